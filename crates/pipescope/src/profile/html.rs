//! The profile as one self-contained HTML page: inline CSS and SVG, no scripts, nothing loaded
//! from elsewhere. Every string from the records (field paths, values, previews) is escaped.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use pipescope_core::quality::summary::{
    Bin, FieldSummary, HIGH_CARDINALITY_ALERT, MISSING_ALERT_RATIO, SKEWED_ALERT_ABS,
    UNIQUE_ALERT_RATIO, ZEROS_ALERT_RATIO,
};

use super::Report;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:70em;\
color:#222;padding:0 1em}h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:2em}\
table{border-collapse:collapse;margin:.5em 0}td,th{padding:2px 10px;text-align:left;\
vertical-align:top;border-bottom:1px solid #eee}th{color:#555;font-weight:600}\
.num{text-align:right;font-variant-numeric:tabular-nums}.field{border:1px solid #ddd;\
border-radius:6px;padding:.5em 1em;margin:1em 0}.field h3{margin:.2em 0;font-family:monospace;\
word-break:break-all}.alert{display:inline-block;background:#c0392b;color:#fff;border-radius:3px;\
padding:0 6px;margin-right:4px;font-size:12px}.cols{display:flex;flex-wrap:wrap;gap:2em}\
pre{background:#f6f6f6;padding:.5em;white-space:pre-wrap;word-break:break-all;max-height:20em;\
overflow:auto}.muted{color:#777}code{word-break:break-all}";

/// Escapes text for HTML content and quoted attributes; control characters (but tab and line
/// ends) become U+FFFD, which HTML does not allow raw.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn number(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == x.trunc() && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    if x.abs() >= 1e6 || x.abs() < 1e-3 {
        return format!("{x:.4e}");
    }
    let text = format!("{x:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "–".into();
    }
    format!("{:.1} %", part as f64 * 100.0 / whole as f64)
}

fn time(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn row(out: &mut String, name: &str, value: &str) {
    let _ = write!(
        out,
        "<tr><th>{name}</th><td class=\"num\">{value}</td></tr>"
    );
}

/// The page.
pub fn render(report: &Report) -> String {
    let p = &report.profile;
    let mut out = String::with_capacity(64 * 1024);
    let title = format!("Profile of {}", report.source);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>\
         <meta name=\"viewport\" content=\"width=device-width\"/><title>{}</title>\
         <style>{STYLE}</style></head><body><h1>{}</h1><p class=\"muted\">made by pipescope \
         at {}</p>",
        escape(&title),
        escape(&title),
        time(report.generated_at_ms)
    );

    out.push_str("<h2 id=\"overview\">Overview</h2><div class=\"cols\"><table>");
    row(&mut out, "Records", &p.records.to_string());
    row(&mut out, "Valid JSON", &p.valid.to_string());
    row(
        &mut out,
        "Invalid",
        &format!("{} ({})", p.invalid, percent(p.invalid, p.records)),
    );
    row(&mut out, "Fields", &p.fields.to_string());
    let cells = p.valid * p.fields as u64;
    row(
        &mut out,
        "Missing cells",
        &format!("{} ({})", p.missing_cells, percent(p.missing_cells, cells)),
    );
    let duplicates = if p.duplicates_exact {
        format!("{} ({})", p.duplicates, percent(p.duplicates, p.records))
    } else {
        format!("≈ {} (estimated)", p.duplicates)
    };
    row(&mut out, "Duplicate records", &duplicates);
    out.push_str("</table><table>");
    let sampling = if p.sample_every > 1 {
        format!("1 in {} of {} records", p.sample_every, p.records_offered)
    } else {
        "every record".into()
    };
    row(&mut out, "Profiled", &sampling);
    if let (Some(first), Some(last)) = (p.first_seen_ms, p.last_seen_ms) {
        row(&mut out, "First record", &time(first));
        row(&mut out, "Last record", &time(last));
    }
    row(
        &mut out,
        "Folded values",
        &format!(
            "{} (≈ {} paths past the cap)",
            p.folded_values, p.folded_paths_estimate
        ),
    );
    row(
        &mut out,
        "Nesting past the depth cap",
        &p.depth_capped.to_string(),
    );
    out.push_str("</table></div>");

    let alerted: Vec<&FieldSummary> = p
        .field_profiles
        .iter()
        .filter(|f| !f.alerts.is_empty())
        .collect();
    if !alerted.is_empty() {
        out.push_str("<h2 id=\"alerts\">Alerts</h2><table>");
        for (index, field) in p.field_profiles.iter().enumerate() {
            if field.alerts.is_empty() {
                continue;
            }
            let _ = write!(
                out,
                "<tr><td><a href=\"#f{index}\"><code>{}</code></a></td><td>{}</td></tr>",
                escape(&field.path),
                alerts(field)
            );
        }
        out.push_str("</table>");
    }

    missing_overview(&mut out, report);

    out.push_str("<h2 id=\"fields\">Fields</h2>");
    for (index, field) in p.field_profiles.iter().enumerate() {
        field_section(&mut out, index, field, p.valid);
    }

    if !p.invalid_examples.is_empty() {
        out.push_str("<h2 id=\"invalid\">Invalid records</h2><table><tr><th>at</th><th>why</th><th>first bytes</th></tr>");
        for example in &p.invalid_examples {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                time(example.at_ms),
                escape(&example.reason),
                escape(&example.preview)
            );
        }
        out.push_str("</table>");
    }

    out.push_str("<h2 id=\"sample\">Sample</h2>");
    if report.sample.is_empty() {
        out.push_str("<p class=\"muted\">no valid record</p>");
    }
    for record in &report.sample {
        let _ = write!(out, "<pre>{}</pre>", escape(record));
    }

    let _ = writeln!(
        out,
        "<h2 id=\"about\">About these figures</h2><ul>\
         <li>Quantiles and histograms come from a DDSketch: each quantile is within ±{q} % of \
         the true value at its rank.</li>\
         <li>Distinct counts are exact up to {exact} values, then HyperLogLog++ \
         (standard error {d:.1} %).</li>\
         <li>Top values are exact while a field holds fewer distinct values than are listed; \
         past that, space-saving: the ± column bounds the overcount.</li>\
         <li>Alerts: CONSTANT one distinct value; UNIQUE every value differs (≥ {u:.0} % past \
         the exact range); HIGH_CARDINALITY a string field with more than {hc} distinct values; \
         MISSING more than {m:.0} % of records lack it or hold null; ZEROS more than {z:.0} % \
         zeros; SKEWED |skewness| over {s}.</li></ul></body></html>",
        q = p.quantile_relative_error * 100.0,
        exact = p.distinct_exact_up_to,
        d = p.distinct_standard_error * 100.0,
        u = UNIQUE_ALERT_RATIO * 100.0,
        hc = HIGH_CARDINALITY_ALERT,
        m = MISSING_ALERT_RATIO * 100.0,
        z = ZEROS_ALERT_RATIO * 100.0,
        s = SKEWED_ALERT_ABS,
    );
    out
}

fn alerts(field: &FieldSummary) -> String {
    field
        .alerts
        .iter()
        .map(|alert| {
            let name = serde_json::to_value(alert)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            format!("<span class=\"alert\">{}</span>", escape(&name))
        })
        .collect()
}

/// A bar per field: present (dark) over the records, null (light) on top.
fn missing_overview(out: &mut String, report: &Report) {
    let p = &report.profile;
    if p.field_profiles.is_empty() || p.valid == 0 {
        return;
    }
    out.push_str(
        "<h2 id=\"missing\">Missing values</h2><p class=\"muted\">per field: with a \
         non-null value (dark), null (light), missing (blank), out of the valid records</p><table>",
    );
    for (index, field) in p.field_profiles.iter().enumerate() {
        let width = 300.0;
        let holding = field.present.saturating_sub(field.nulls.min(field.present));
        let filled = width * holding as f64 / p.valid as f64;
        let nulls = width * field.nulls.min(field.present) as f64 / p.valid as f64;
        let _ = write!(
            out,
            "<tr><td><a href=\"#f{index}\"><code>{}</code></a></td><td><svg width=\"{width}\" \
             height=\"12\" role=\"img\"><rect width=\"{width}\" height=\"12\" fill=\"#eee\"/>\
             <rect width=\"{filled:.1}\" height=\"12\" fill=\"#2c6fbb\"/><rect x=\"{filled:.1}\" \
             width=\"{nulls:.1}\" height=\"12\" fill=\"#9ec1e6\"/></svg></td><td class=\"num\">{} \
             missing, {} null</td></tr>",
            escape(&field.path),
            field.missing,
            field.nulls
        );
    }
    out.push_str("</table>");
}

fn field_section(out: &mut String, index: usize, field: &FieldSummary, records: u64) {
    let kind = field.dominant_type.map_or("none", |t| t.name());
    let _ = write!(
        out,
        "<div class=\"field\" id=\"f{index}\"><h3>{}</h3><p>{kind} {}</p><div class=\"cols\"><table>",
        escape(&field.path),
        alerts(field)
    );
    row(
        out,
        "Present",
        &format!("{} ({})", field.present, percent(field.present, records)),
    );
    row(
        out,
        "Missing",
        &format!("{} ({})", field.missing, percent(field.missing, records)),
    );
    row(out, "Values", &field.values.to_string());
    row(out, "Null", &field.nulls.to_string());
    row(out, "Empty", &field.empties.to_string());
    let distinct = if field.distinct_exact {
        field.distinct.to_string()
    } else {
        format!("≈ {}", field.distinct)
    };
    row(out, "Distinct", &distinct);
    let types: Vec<String> = field
        .types
        .iter()
        .map(|t| format!("{} {}", t.kind.name(), t.count))
        .collect();
    row(out, "Types", &escape(&types.join(", ")));
    if let Some(lengths) = &field.string_lengths {
        row(
            out,
            "String length",
            &format!(
                "{}–{}, mean {}",
                lengths.min,
                lengths.max,
                number(lengths.mean)
            ),
        );
    }
    row(out, "First seen", &time(field.first_seen_ms));
    row(out, "Last seen", &time(field.last_seen_ms));
    out.push_str("</table>");
    if let Some(numbers) = &field.numbers {
        out.push_str("<table>");
        row(out, "Min", &number(numbers.min));
        row(out, "Max", &number(numbers.max));
        row(out, "Mean", &number(numbers.mean));
        if let Some(sd) = numbers.stddev {
            row(out, "Std dev", &number(sd));
        }
        if let Some(skew) = numbers.skewness {
            row(out, "Skewness", &number(skew));
        }
        row(
            out,
            "Zeros",
            &format!(
                "{} ({})",
                numbers.zeros,
                percent(numbers.zeros, numbers.count)
            ),
        );
        if numbers.quantiles_unresolved {
            row(
                out,
                "Quantiles",
                &format!(
                    "not shown: the sketch's ±{} % of values near {} is wider than their range of {}",
                    number(pipescope_core::quality::sketch::QUANTILE_RELATIVE_ERROR * 100.0),
                    number(numbers.max.abs().max(numbers.min.abs())),
                    number(numbers.max - numbers.min)
                ),
            );
        }
        for (q, value) in &numbers.quantiles {
            row(out, &format!("p{}", number(q * 100.0)), &number(*value));
        }
        out.push_str("</table>");
        histogram(out, &numbers.histogram);
    }
    // A value whose count is mostly what it inherited says nothing about its frequency.
    let (ranked, unranked): (Vec<_>, Vec<_>) = field
        .top_values
        .iter()
        .partition(|top| top.error == 0 || top.count - top.error > 1);
    if !ranked.is_empty() || !unranked.is_empty() {
        let most = ranked.first().map_or(1, |top| top.count.max(1));
        out.push_str("<table>");
        if !unranked.is_empty() {
            let _ = write!(
                out,
                "<caption class=\"muted\">{} more values seen too rarely to rank</caption>",
                unranked.len()
            );
        }
        out.push_str("<tr><th>value</th><th>count</th><th>±</th><th></th></tr>");
        for top in ranked {
            let width = 120.0 * top.count as f64 / most as f64;
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td><svg width=\"120\" height=\"10\" role=\"img\"><rect width=\"{width:.1}\" \
                 height=\"10\" fill=\"#2c6fbb\"/></svg></td></tr>",
                escape(&top.value),
                top.count,
                top.error
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</div></div>");
}

fn histogram(out: &mut String, bins: &[Bin]) {
    let Some(most) = bins.iter().map(|b| b.count).max().filter(|m| *m > 0) else {
        return;
    };
    let (width, height, bar) = (300.0, 100.0, 300.0 / bins.len() as f64);
    let _ = write!(
        out,
        "<figure><svg width=\"{width}\" height=\"{}\" role=\"img\">",
        height + 16.0
    );
    for (i, bin) in bins.iter().enumerate() {
        let h = height * bin.count as f64 / most as f64;
        let _ = write!(
            out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#2c6fbb\">\
             <title>{} to {}: {}</title></rect>",
            i as f64 * bar + 1.0,
            height - h,
            (bar - 2.0).max(1.0),
            number(bin.from),
            number(bin.to),
            bin.count
        );
    }
    let (first, last) = (bins[0].from, bins[bins.len() - 1].to);
    let _ = write!(
        out,
        "<text x=\"0\" y=\"{}\" font-size=\"11\">{}</text><text x=\"{width}\" y=\"{}\" \
         font-size=\"11\" text-anchor=\"end\">{}</text></svg><figcaption class=\"muted\">\
         histogram (from the quantile sketch)</figcaption></figure>",
        height + 13.0,
        number(first),
        height + 13.0,
        number(last)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_no_markup_and_no_control_characters() {
        assert_eq!(
            escape("<script>alert('x')</script>&\"\u{0}\n"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\u{FFFD}\n"
        );
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(1.0 / 3.0), "0.3333");
        assert_eq!(number(1.5e9), "1500000000");
        assert_eq!(number(1.5e20), "1.5000e20");
        assert_eq!(number(-0.0001), "-1.0000e-4");
    }
}

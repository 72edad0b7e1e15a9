//! Exposition text: the OpenMetrics text that prometheus-client writes, rewritten as the
//! Prometheus text format 0.0.4 that `promtool check metrics` and older scrapers read.

use std::collections::HashMap;

/// Rewrites OpenMetrics text as Prometheus text 0.0.4: counter families are named with their
/// `_total` suffix, info families become gauges named `_info`, `_created` samples, units,
/// exemplars and `# EOF` are left out.
pub fn openmetrics_to_prometheus_text(text: &str) -> String {
    let mut types: HashMap<&str, &str> = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((name, kind)) = rest.split_once(' ')
        {
            types.insert(name, kind);
        }
    }
    let family_name = |name: &str| -> String {
        match types.get(name) {
            Some(&"counter") => format!("{name}_total"),
            Some(&"info") => format!("{name}_info"),
            _ => name.to_string(),
        }
    };
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            // Prometheus text escapes only backslash and newline in help.
            let help = help.replace("\\\"", "\"");
            out.push_str(&format!("# HELP {} {help}\n", family_name(name)));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let kind = match kind {
                "counter" | "gauge" | "histogram" | "summary" => kind,
                "info" => "gauge",
                _ => "untyped",
            };
            out.push_str(&format!("# TYPE {} {kind}\n", family_name(name)));
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        if line[..name_end].ends_with("_created") {
            continue;
        }
        // An exemplar follows " # " after the value; a label value may hold " # " too, so
        // look for it only after the label set's closing brace.
        let body_start = labels_end(line, name_end);
        let sample = match line[body_start..].find(" # ") {
            Some(i) => &line[..body_start + i],
            None => line,
        };
        out.push_str(sample);
        out.push('\n');
    }
    out
}

/// Index just after the label set that starts at `from` (or `from` when there is none).
fn labels_end(line: &str, from: usize) -> usize {
    if !line[from..].starts_with('{') {
        return from;
    }
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line[from..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return from + i + 1,
            _ => {}
        }
    }
    line.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_is_rewritten_as_prometheus_text() {
        let om = "# HELP a_requests Requests \\\"served\\\".\n# TYPE a_requests counter\na_requests_total{x=\"1\"} 3 # {trace=\"t\"} 1.0\na_requests_created 1.7e9\n# HELP b_build Build.\n# TYPE b_build info\nb_build_info{version=\"1 # 2\"} 1\n# HELP c_bytes Size.\n# TYPE c_bytes gauge\n# UNIT c_bytes bytes\nc_bytes 42\n# EOF\n";
        assert_eq!(
            openmetrics_to_prometheus_text(om),
            "# HELP a_requests_total Requests \"served\".\n# TYPE a_requests_total counter\na_requests_total{x=\"1\"} 3\n# HELP b_build_info Build.\n# TYPE b_build_info gauge\nb_build_info{version=\"1 # 2\"} 1\n# HELP c_bytes Size.\n# TYPE c_bytes gauge\nc_bytes 42\n"
        );
    }
}

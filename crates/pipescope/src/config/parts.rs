//! The pipeline parts' tables in a configuration file (`[bridge]`, `[sink.influx]`, ...): each
//! holds the options of one part, keys named as its long flags. [`part_flags`] turns a table
//! into those flags (`pipescope <part> --config FILE`); [`check_part_tables`] checks every
//! table as its part would read it (`pipescope check`).

use clap::ArgAction;

use crate::pipeline::PART_CONFIG;

/// The pipeline parts' tables in a configuration file (`[bridge]`, `[sink.influx]`, ...),
/// each checked as its part would read it: unknown keys, values of the wrong type, values the
/// part's flags refuse. Options a table leaves out are not errors (the command line may give
/// them). `cli` is the whole command line (`Cli::command()`). Returns the commands of the
/// tables found, and the errors.
pub fn check_part_tables(text: &str, cli: &clap::Command) -> (Vec<String>, Vec<String>) {
    let Ok(root) = text.parse::<toml::Table>() else {
        return (Vec::new(), Vec::new()); // the monitor's own check reports bad TOML
    };
    let mut parts = Vec::new();
    let mut errors = Vec::new();
    let mut pending: Vec<(Vec<String>, &clap::Command)> = vec![(Vec::new(), cli)];
    while let Some((path, cmd)) = pending.pop() {
        for sub in cmd.get_subcommands() {
            let mut sub_path = path.clone();
            sub_path.push(sub.get_name().to_string());
            if !sub.get_arguments().any(|a| a.get_id() == PART_CONFIG) {
                pending.push((sub_path, sub));
                continue;
            }
            let mut table = Some(&root);
            for word in &sub_path {
                table = match table.and_then(|t| t.get(word)) {
                    Some(toml::Value::Table(t)) => Some(t),
                    _ => None,
                };
            }
            if table.is_none() {
                continue;
            }
            parts.push(sub_path.join(" "));
            let flags = match part_flags(text, &sub_path, sub, |_| false) {
                Ok(flags) => flags,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let argv = std::iter::once("pipescope".to_string())
                .chain(sub_path.iter().cloned())
                .chain(flags);
            if let Err(e) = cli.clone().try_get_matches_from(argv)
                && e.kind() != clap::error::ErrorKind::MissingRequiredArgument
            {
                let first = e.to_string();
                let first = first.lines().next().unwrap_or_default();
                let first = first.strip_prefix("error: ").unwrap_or(first);
                errors.push(format!("[{}] {first}", sub_path.join(".")));
            }
        }
    }
    parts.sort();
    errors.sort();
    (parts, errors)
}

/// The flags that the part's table in `text` stands for, leaving out the options `given`
/// says came from the command line or the environment.
pub fn part_flags(
    text: &str,
    path: &[String],
    part: &clap::Command,
    given: impl Fn(&str) -> bool,
) -> Result<Vec<String>, String> {
    let root: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("invalid TOML: {}", e.to_string().trim_end()))?;
    let table_name = path.join(".");
    let mut table = &root;
    for word in path {
        table = match table.get(word) {
            Some(toml::Value::Table(t)) => t,
            Some(_) => return Err(format!("[{table_name}] must be a table")),
            None => {
                return Err(format!(
                    "no [{table_name}] table: the options of `pipescope {}` go there",
                    path.join(" ")
                ));
            }
        };
    }
    let options: Vec<&clap::Arg> = part
        .get_arguments()
        .filter(|a| a.get_id() != PART_CONFIG && !a.is_positional())
        .collect();
    let mut flags = Vec::new();
    for (key, value) in table {
        let wanted = key.replace('_', "-");
        let Some(arg) = options.iter().find(|a| {
            a.get_long() == Some(wanted.as_str()) || a.get_id().as_str().replace('_', "-") == wanted
        }) else {
            let mut known: Vec<String> = options
                .iter()
                .map(|a| match a.get_long() {
                    Some(long) => long.to_string(),
                    None => a.get_id().as_str().replace('_', "-"),
                })
                .collect();
            known.sort();
            return Err(format!(
                "[{table_name}] {key}: no such option; known: {}",
                known.join(", ")
            ));
        };
        if given(arg.get_id().as_str()) {
            continue;
        }
        let flag = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => continue,
        };
        let scalar = |v: &toml::Value| -> Result<String, String> {
            match v {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                toml::Value::Boolean(b) => Ok(b.to_string()),
                toml::Value::Datetime(d) => Ok(d.to_string()),
                _ => Err(format!(
                    "[{table_name}] {key}: expected a string, number or boolean"
                )),
            }
        };
        if !arg.get_action().takes_values() {
            match value {
                toml::Value::Boolean(true) => flags.push(flag),
                toml::Value::Boolean(false) => {}
                _ => return Err(format!("[{table_name}] {key}: expected true or false")),
            }
            continue;
        }
        let repeatable = matches!(arg.get_action(), ArgAction::Append);
        let values = match value {
            toml::Value::Array(items) if repeatable => {
                items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?
            }
            toml::Value::Table(pairs) if repeatable => pairs
                .iter()
                .map(|(k, v)| Ok(format!("{k}={}", scalar(v)?)))
                .collect::<Result<Vec<_>, String>>()?,
            toml::Value::Array(_) | toml::Value::Table(_) => {
                return Err(format!("[{table_name}] {key}: takes one value"));
            }
            v => vec![scalar(v)?],
        };
        for v in values {
            flags.push(flag.clone());
            flags.push(v);
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::cli::Cli;

    #[test]
    fn a_table_stands_for_its_flags_less_those_given_elsewhere() {
        let cli = Cli::command();
        let sink = cli
            .find_subcommand("sink")
            .and_then(|s| s.find_subcommand("influx"))
            .unwrap();
        let path = ["sink".to_string(), "influx".to_string()];
        let text = "[sink.influx]\nbatch_size = 5\ndatabase = \"d\"\ntopic = [\"a\", \"b\"]\n";
        let flags = part_flags(text, &path, sink, |id| id == "database").unwrap();
        assert_eq!(flags, ["--batch-size", "5", "--topic", "a", "--topic", "b"]);
        assert_eq!(
            part_flags("[bridge]\n", &path, sink, |_| false).unwrap_err(),
            "no [sink.influx] table: the options of `pipescope sink influx` go there"
        );
    }

    #[test]
    fn each_table_is_checked_as_its_part_reads_it() {
        let text = "[web]\nlisten = \"x\"\n[bridge]\nmax_in_flight = \"lots\"\n\
                    [sink.influx]\ndatabse = \"x\"\n[simulate.calls]\nrate = 2.0\n";
        let (parts, errors) = check_part_tables(text, &Cli::command());
        assert_eq!(parts, ["bridge", "simulate calls", "sink influx"]);
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(
            errors[0].starts_with("[bridge] invalid value 'lots' for '--max-in-flight"),
            "{errors:#?}"
        );
        assert!(
            errors[1].starts_with("[sink.influx] databse: no such option; known: "),
            "{errors:#?}"
        );
        // Bad TOML is left to the monitor's own check.
        assert_eq!(
            check_part_tables("[bridge", &Cli::command()),
            (Vec::new(), Vec::new())
        );
    }
}

// The commands README.md shows an operator, read from the README itself, for the tests that
// parse each one with the program's own argument parser (`include!`d by the server's,
// `taquilla-paysim`'s, `taquilla-ops`'s and `taquilla-loadgen`'s tests). A flag renamed in the
// code but not in the README, or a README line mistyped, fails those tests with the line.

/// README.md, read when the test is compiled.
const README: &str = include_str!("../README.md");

/// Every command of README.md's ```sh blocks that starts with one of `starts` (for example
/// `$lg` or `cargo run -p taquilla-ops --`), as the argument vector the program receives:
/// continuation lines joined, comments and a trailing `&` cut, `vars` replaced in order (shell
/// variables and command substitutions), split into words as the shell splits them (quoted
/// words kept whole, quotes removed), and the start replaced by `program`. Each command comes
/// with its README line, for the test's failure message.
fn readme_commands(
    starts: &[&str],
    program: &str,
    vars: &[(&str, &str)],
) -> Vec<(String, Vec<String>)> {
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in README.lines() {
        if line.starts_with("```") {
            in_block = line == "```sh";
            pending.clear();
            continue;
        }
        if !in_block {
            continue;
        }
        let line = strip_comment(line);
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line);
        let line = std::mem::take(&mut pending);
        for command in split_commands(&line) {
            let command = command.trim().trim_end_matches('&').trim_end();
            if let Some(argv) = parse_command(command, starts, program, vars) {
                commands.push((command.to_string(), argv));
            }
        }
    }
    assert!(
        !commands.is_empty(),
        "README.md shows no command starting with {starts:?}"
    );
    commands
}

/// `command`'s argument vector if it starts with one of `starts` (see `readme_commands`).
fn parse_command(
    command: &str,
    starts: &[&str],
    program: &str,
    vars: &[(&str, &str)],
) -> Option<Vec<String>> {
    for start in starts {
        let Some(rest) = command.strip_prefix(start) else {
            continue;
        };
        if !(rest.is_empty() || rest.starts_with(' ')) {
            continue;
        }
        let mut rest = rest.to_string();
        for (name, value) in vars {
            rest = rest.replace(name, value);
        }
        let mut argv = vec![program.to_string()];
        argv.extend(shell_words(&rest));
        return Some(argv);
    }
    None
}

/// `line` split at each `;` outside quotes.
fn split_commands(line: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quote = None;
    let mut from = 0;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ';') => {
                parts.push(&line[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&line[from..]);
    parts
}

/// `line` without a shell comment (a `#` at the start of a word, outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if previous.is_whitespace() => return line[..i].trim_end(),
            _ => {}
        }
        previous = c;
    }
    line
}

/// `text` split into words as the shell splits them: on whitespace outside quotes, quotes
/// removed.
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = None;
    for c in text.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Parses each of `commands` with `parse` (the program's own parser); fails with the README
/// line and the parser's message on the first that does not parse.
fn assert_each_parses<E: std::fmt::Display>(
    commands: Vec<(String, Vec<String>)>,
    parse: impl Fn(&[String]) -> Result<(), E>,
) {
    for (line, argv) in commands {
        if let Err(e) = parse(&argv) {
            panic!("README.md: `{line}` does not parse:\n{e}");
        }
    }
}

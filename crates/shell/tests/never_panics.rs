//! Random text through the splitter, the tokenizer and the dispatcher: none
//! of them may panic, and what they return keeps its promises.

use core::fmt::Write;

use proptest::prelude::*;
use shell::{arg_number, arg_protection, split_commands, tokenize, Command, CommandError, Shell, Status};

fn numbers(_: &mut (), args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    for index in 0..args.len() {
        writeln!(out, "{}", arg_number(args, index, "number")?)?;
    }
    Ok(())
}

fn flags(_: &mut (), args: &[&str], out: &mut dyn Write) -> Result<(), CommandError> {
    writeln!(out, "{}", arg_protection(args, 0)?)?;
    Ok(())
}

static COMMANDS: &[Command<()>] = &[
    Command { name: "n", usage: "n [NUMBER]...", help: "parse numbers", run: numbers },
    Command { name: "f", usage: "f FLAGS", help: "parse flags", run: flags },
];

/// Text made mostly of the characters the parsers care about.
fn shell_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(vec!['n', 'f', ' ', ';', '"', '\n', '\t', '\r', 'x', '0', '9', 'k', 'r', 'w', '-']),
            1 => prop::sample::select(vec!['\u{a0}', '\u{b}', '\u{c}', '\u{85}', '\u{2003}', '\u{3000}', '٤', 'é']),
            1 => any::<char>(),
        ],
        0..80,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Commands are trimmed of ASCII whitespace only, and nothing else is
    /// removed from them.
    #[test]
    fn split_commands_gives_trimmed_nonempty_single_lines(script in shell_text()) {
        let commands = split_commands(&script);
        for command in &commands {
            prop_assert!(!command.is_empty());
            prop_assert_eq!(*command, command.trim_ascii());
            prop_assert!(!command.contains('\n'));
        }
        // Without quotes, it is a plain split at `;` and line ends.
        if !script.contains('"') {
            let plain: Vec<&str> =
                script.split([';', '\n']).map(str::trim_ascii).filter(|command| !command.is_empty()).collect();
            prop_assert_eq!(commands, plain);
        }
    }

    /// Words are split at ASCII whitespace only, and keep every other
    /// character.
    #[test]
    fn tokenize_keeps_its_rules(command in shell_text()) {
        match tokenize(&command) {
            Ok(words) => {
                prop_assert!(command.matches('"').count() % 2 == 0);
                for word in &words {
                    prop_assert!(!word.contains('"'));
                }
                // Without quotes, it is a plain split at ASCII whitespace.
                if !command.contains('"') {
                    let plain: Vec<&str> = command.split_ascii_whitespace().collect();
                    prop_assert_eq!(words, plain);
                }
            }
            Err(shell::TokenizeError::UnterminatedQuote { column }) => {
                prop_assert!(command.matches('"').count() % 2 == 1);
                prop_assert_eq!(command.chars().nth(column - 1), Some('"'));
            }
        }
    }

    #[test]
    fn the_dispatcher_survives_anything(script in shell_text()) {
        let shell = Shell::new(COMMANDS);
        let mut out = String::new();
        let status = shell.run_line(&mut (), &script, &mut out);
        prop_assert_eq!(status == Status::Empty, split_commands(&script).is_empty());
        let result = shell.run_script(&mut (), &script, &mut out);
        prop_assert_eq!(result.commands, split_commands(&script).len());
        prop_assert!(result.failed <= result.commands);
        prop_assert_eq!(result.succeeded(), status != Status::Failed);
    }
}

//! POSIX shell quoting: what `ssh HOST COMMAND` needs, since the remote `sshd` hands the
//! command line to the user's login shell, which splits and expands it.
//!
//! A word made only of characters no POSIX shell treats specially is left as it is; any
//! other word is wrapped in single quotes, inside which nothing is special, and each single
//! quote of the word becomes `'\''` (close, an escaped quote, reopen). A NUL byte cannot be
//! passed in an argument at all, so a word holding one is refused.

/// A word that cannot be passed to a remote command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{word:?} holds a NUL byte, which no command-line argument can carry")]
pub struct QuoteError {
    pub word: String,
}

/// Characters that are never special to a POSIX shell, anywhere in a word.
fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"_-./:@%+,=".contains(&byte)
}

/// `word` quoted for a POSIX shell: the shell reads it back as exactly one word, `word`.
pub fn quote(word: &str) -> Result<String, QuoteError> {
    if word.contains('\0') {
        return Err(QuoteError {
            word: word.to_owned(),
        });
    }
    // `=` is plain inside a word but would make a leading word an assignment; `~` is not
    // plain (tilde expansion); an empty word needs quotes to exist at all.
    if !word.is_empty() && word.bytes().all(is_plain) && !word.starts_with('=') {
        return Ok(word.to_owned());
    }
    let mut quoted = String::with_capacity(word.len() + 2);
    quoted.push('\'');
    for c in word.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    Ok(quoted)
}

/// The command line that a POSIX shell splits back into exactly `argv`.
pub fn join(argv: &[&str]) -> Result<String, QuoteError> {
    let words: Result<Vec<String>, QuoteError> = argv.iter().map(|w| quote(w)).collect();
    Ok(words?.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// What `sh` makes of `line`: its words, one per NUL-terminated record.
    fn words_by_sh(line: &str) -> Vec<String> {
        let script = format!("printf '%s\\0' {line}");
        let output = Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("sh runs");
        assert!(output.status.success(), "{script}: {output:?}");
        let text = String::from_utf8(output.stdout).expect("utf-8");
        let mut words: Vec<String> = text.split('\0').map(str::to_owned).collect();
        assert_eq!(words.pop().as_deref(), Some(""), "{text:?}");
        words
    }

    #[test]
    fn plain_words_stay_as_they_are() {
        assert_eq!(quote("iptables").unwrap(), "iptables");
        assert_eq!(
            quote("/var/tmp/sb-abc/n1.pid").unwrap(),
            "/var/tmp/sb-abc/n1.pid"
        );
        assert_eq!(quote("--dport=2379").unwrap(), "--dport=2379");
        assert_eq!(quote("10.73.0.11:2380").unwrap(), "10.73.0.11:2380");
    }

    #[test]
    fn special_words_are_single_quoted() {
        assert_eq!(quote("").unwrap(), "''");
        assert_eq!(quote("a b").unwrap(), "'a b'");
        assert_eq!(quote("it's").unwrap(), "'it'\\''s'");
        assert_eq!(quote("$HOME").unwrap(), "'$HOME'");
        assert_eq!(quote("~").unwrap(), "'~'");
        assert_eq!(quote("=x").unwrap(), "'=x'");
    }

    #[test]
    fn a_nul_byte_is_refused() {
        assert!(quote("a\0b").is_err());
        assert!(join(&["ok", "a\0b"]).is_err());
    }

    #[test]
    fn sh_reads_back_exactly_the_words_given() {
        let hostile = [
            "plain",
            "",
            " ",
            "two words",
            "it's",
            "'",
            "''",
            "\"",
            "\\",
            "\\'",
            "$(touch /tmp/never)",
            "`id`",
            "$HOME",
            "${PATH}",
            "a;b",
            "a|b",
            "a&&b",
            "*",
            "?",
            "[a]",
            "~",
            "~root",
            "x=1",
            "=1",
            "#comment",
            "-n",
            "line\nbreak",
            "tab\there",
            "{a,b}",
            "!",
            "ünïcödé ✓",
            "a\rb",
        ];
        let line = join(&hostile).unwrap();
        assert_eq!(words_by_sh(&line), hostile);
        // Each word on its own, too (a word at the start of a line is where `=`, `#` and
        // `~` matter).
        for word in hostile {
            assert_eq!(words_by_sh(&quote(word).unwrap()), [word], "{word:?}");
        }
        // Every byte value but NUL, one word each.
        let every_char: Vec<String> = (1u8..=127).map(|b| (b as char).to_string()).collect();
        let refs: Vec<&str> = every_char.iter().map(String::as_str).collect();
        assert_eq!(words_by_sh(&join(&refs).unwrap()), refs);
    }
}

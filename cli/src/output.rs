//! What the commands print: the API's JSON with `--json`, else a few lines of text.

use std::path::Path;

use serde_json::Value;

/// The output mode.
#[derive(Clone, Copy, Debug)]
pub struct Out {
    /// `--json`.
    pub json: bool,
}

impl Out {
    /// Prints `value` (JSON mode) or `text()` on stdout.
    pub fn print(&self, value: &Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            let text = text();
            if !text.is_empty() {
                println!("{text}");
            }
        }
    }

    /// Like [`Self::print`], but on stderr when the content itself went to stdout (`-o -`).
    pub fn note(&self, value: &Value, text: impl FnOnce() -> String, target: &Path) {
        if target.as_os_str() != "-" {
            return self.print(value, text);
        }
        if self.json {
            eprintln!("{value}");
        } else {
            eprintln!("{}", text());
        }
    }
}

//! How logs name a client: by its client id, with control characters escaped so that a
//! crafted id cannot forge log lines.

use std::fmt;

/// Displays a client id for a log line.
pub(crate) struct LogName<'a>(pub(crate) &'a str);

impl fmt::Display for LogName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("<no client id>")
        } else if self.0.chars().any(char::is_control) {
            write!(f, "{}", self.0.escape_debug())
        } else {
            f.write_str(self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_never_empty() {
        assert_eq!(LogName("c1").to_string(), "c1");
        assert_eq!(LogName("a\nINFO fake").to_string(), "a\\nINFO fake");
        assert_eq!(LogName("").to_string(), "<no client id>");
    }
}

//! Validation of identifiers that come from callers. Each check returns a sentence a person
//! understands, naming the field.

/// Checks an event id: 1–64 characters of `[a-z0-9-]`, not starting or ending with `-`.
pub fn check_event_id(field: &str, id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!(
            "{field} is empty; give the event's id, e.g. \"lux-mad-2026-03-30\""
        ));
    }
    if id.len() > 64 {
        return Err(format!(
            "{field} is {} characters long; at most 64 are allowed",
            id.len()
        ));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!(
            "{field} {id:?} may only contain lowercase letters, digits and '-'"
        ));
    }
    if id.starts_with('-') || id.ends_with('-') {
        return Err(format!("{field} {id:?} may not start or end with '-'"));
    }
    Ok(())
}

/// Checks a section or venue id: 1–32 characters of `[A-Za-z0-9_-]`.
pub fn check_short_id(field: &str, id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 32 {
        return Err(format!("{field} {id:?} must be 1 to 32 characters long"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "{field} {id:?} may only contain letters, digits, '-' and '_'"
        ));
    }
    Ok(())
}

/// Checks a display text: 1–`max` characters, no control characters.
pub fn check_text(field: &str, text: &str, max: usize) -> Result<(), String> {
    let chars = text.chars().count();
    if text.trim().is_empty() {
        return Err(format!("{field} is empty"));
    }
    if chars > max {
        return Err(format!(
            "{field} is {chars} characters long; at most {max} are allowed"
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{field} contains control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids() {
        assert!(check_event_id("event_id", "lux-mad-2026-03-30").is_ok());
        assert!(check_event_id("event_id", "a").is_ok());
        let err = check_event_id("event_id", "").expect_err("must fail");
        assert!(err.contains("event_id is empty"), "{err}");
        assert!(check_event_id("event_id", "Lux").is_err());
        assert!(check_event_id("event_id", "-lux").is_err());
        assert!(check_event_id("event_id", "lux tour").is_err());
        assert!(check_event_id("event_id", &"x".repeat(65)).is_err());
    }

    #[test]
    fn short_ids_and_text() {
        assert!(check_short_id("section id", "101").is_ok());
        assert!(check_short_id("section id", "VIP_Box-1").is_ok());
        assert!(check_short_id("section id", "").is_err());
        assert!(check_short_id("section id", "a b").is_err());
        assert!(check_text("name", "LUX Tour — Madrid", 10).is_err());
        assert!(check_text("name", "LUX Tour — Madrid", 100).is_ok());
        assert!(check_text("name", "  ", 100).is_err());
        assert!(check_text("name", "bell\u{7}", 100).is_err());
    }
}

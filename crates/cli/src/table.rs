//! Human output of the client commands: aligned tables and readable times.
//! (`--json` prints the API's values as they are, times in milliseconds
//! since the Unix epoch.)

/// Formats rows under a header, each column as wide as its widest cell (the
/// last column is not padded). Widths count characters.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A time in milliseconds since the Unix epoch as RFC 3339 in UTC, to the
/// second: `2026-12-01T18:16:57Z`.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// How long before `now_ms` the time `ms` was: `12 s ago`, `5 min ago`,
/// `3 h ago`, `2 d ago` (`in the future` for a later time).
pub fn ago(now_ms: u64, ms: u64) -> String {
    if ms > now_ms + 1000 {
        return "in the future".into();
    }
    let s = now_ms.saturating_sub(ms) / 1000;
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        7200..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// A time for a table: RFC 3339 and how long ago.
pub fn when(now_ms: u64, ms: u64) -> String {
    format!("{} ({})", rfc3339(ms), ago(now_ms, ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_readable() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_134_046_130), "2026-12-01T14:07:26Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(ago(100_000, 88_000), "12 s ago");
        assert_eq!(ago(10_000_000, 9_700_000), "5 min ago");
        assert_eq!(ago(0, 5_000), "in the future");
    }

    #[test]
    fn columns_align_whatever_the_cell_widths() {
        let rows = vec![
            vec![
                "1".into(),
                "2001:db8::1234:5678:9abc:def0".into(),
                "x".into(),
            ],
            vec!["12345".into(), "a".into(), "why".into()],
        ];
        let out = render(&["ID", "VALUE", "REASON"], &rows);
        let lines: Vec<&str> = out.lines().collect();
        let col = |l: &str, word: &str| l.find(word).unwrap();
        assert_eq!(col(lines[0], "VALUE"), col(lines[1], "2001"));
        assert_eq!(col(lines[0], "VALUE"), col(lines[2], "a "));
        assert_eq!(col(lines[0], "REASON"), col(lines[2], "why"));
        assert_eq!(col(lines[0], "REASON"), col(lines[1], "x"));
    }
}

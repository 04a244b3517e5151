// SPDX-License-Identifier: GPL-2.0
//! The XML form of a clone's metadata, as `clone_dump` writes it and
//! `clone_restore` reads it (the schema is in Documentation/admin-guide/device-mapper/clone-tools/clone_dump.rst):
//!
//! ```text
//! <superblock version="1" region_size="8" target_size="2048" nr_regions="256" nr_copied="13">
//!   <copied first="0" count="10"/>
//! </superblock>
//! ```
//!
//! `nr_regions` and `nr_copied` are written for the reader's benefit and
//! checked when read back; runs must be in order and not overlap.

use crate::write::Metadata;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::fmt::Write;

/// The XML of `m`.
pub fn to_xml(m: &Metadata) -> String {
    let copied: u64 = m.copied.iter().map(|&(_, n)| n).sum();
    let mut s = format!(
        "<superblock version=\"{}\" region_size=\"{}\" target_size=\"{}\" nr_regions=\"{}\" nr_copied=\"{copied}\">\n",
        crate::read::VERSION,
        m.region_size,
        m.target_size,
        m.nr_regions()
    );
    for (first, count) in &m.copied {
        let _ = writeln!(s, "  <copied first=\"{first}\" count=\"{count}\"/>");
    }
    s.push_str("</superblock>\n");
    s
}

fn attr(e: &BytesStart<'_>, name: &str) -> Result<Option<u64>, String> {
    for a in e.attributes() {
        let a = a.map_err(|e| format!("bad attribute: {e}"))?;
        if a.key.as_ref() == name.as_bytes() {
            let v = String::from_utf8_lossy(&a.value).into_owned();
            return v
                .parse()
                .map(Some)
                .map_err(|_| format!("{name}=\"{v}\" is not a number"));
        }
    }
    Ok(None)
}

fn need(e: &BytesStart<'_>, name: &str, line: usize) -> Result<u64, String> {
    attr(e, name)?.ok_or_else(|| {
        format!(
            "line {line}: <{}> has no {name}",
            String::from_utf8_lossy(e.name().as_ref())
        )
    })
}

/// The line of a byte offset, for offsets that never go back.
struct Lines<'a> {
    text: &'a str,
    /// The offset counted up to, and its line (from 1).
    at: usize,
    line: usize,
}

impl Lines<'_> {
    fn of(&mut self, pos: u64) -> usize {
        let pos = usize::try_from(pos).map_or(self.text.len(), |p| p.min(self.text.len()));
        if pos > self.at {
            self.line += self.text.as_bytes()[self.at..pos]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.at = pos;
        }
        self.line
    }
}

/// Parses the XML form; errors say where.
pub fn from_xml(text: &str) -> Result<Metadata, String> {
    let mut r = Reader::from_str(text);
    // Line numbers are counted as the reader moves on: each byte is looked at once.
    let mut lines = Lines {
        text,
        at: 0,
        line: 1,
    };
    let mut m: Option<Metadata> = None;
    let mut declared = None;
    let mut closed = false;
    // The sum of the runs' counts, checked as each is read.
    let mut copied = 0u64;
    loop {
        let pos = r.buffer_position();
        let line = lines.of(pos);
        let ev = r.read_event().map_err(|e| format!("line {line}: {e}"))?;
        let empty_superblock = matches!(&ev, Event::Empty(e) if e.name().as_ref() == b"superblock");
        match ev {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"superblock" => {
                    if m.is_some() {
                        return Err(format!("line {line}: a second <superblock>"));
                    }
                    let version = need(&e, "version", line)?;
                    if version != u64::from(crate::read::VERSION) {
                        return Err(format!("line {line}: version {version}, only 1 is known"));
                    }
                    let region_size = need(&e, "region_size", line)?;
                    let target_size = need(&e, "target_size", line)?;
                    let meta = Metadata {
                        region_size,
                        target_size,
                        copied: Vec::new(),
                    };
                    if let Some(n) = attr(&e, "nr_regions")? {
                        if n != meta.nr_regions() {
                            return Err(format!(
                                "line {line}: nr_regions=\"{n}\", but the sizes give {}",
                                meta.nr_regions()
                            ));
                        }
                    }
                    declared = attr(&e, "nr_copied")?;
                    m = Some(meta);
                    closed = empty_superblock;
                }
                b"copied" => {
                    let meta = m
                        .as_mut()
                        .ok_or_else(|| format!("line {line}: <copied> outside <superblock>"))?;
                    if closed {
                        return Err(format!(
                            "line {line}: <copied> after the end of <superblock>"
                        ));
                    }
                    let first = need(&e, "first", line)?;
                    let count = need(&e, "count", line)?;
                    if first.checked_add(count).is_none() {
                        return Err(format!(
                            "line {line}: run first=\"{first}\" count=\"{count}\" ends past 2^64"
                        ));
                    }
                    copied = copied.checked_add(count).ok_or_else(|| {
                        format!("line {line}: the runs hold more than 2^64 regions")
                    })?;
                    meta.copied.push((first, count));
                }
                other => {
                    return Err(format!(
                        "line {line}: unknown element <{}>",
                        String::from_utf8_lossy(other)
                    ));
                }
            },
            Event::End(e) if e.name().as_ref() == b"superblock" => closed = true,
            Event::Eof => break,
            _ => {}
        }
    }
    let m = m.ok_or("no <superblock> element")?;
    if !closed {
        return Err("<superblock> is not closed".into());
    }
    if let Some(d) = declared {
        if d != copied {
            return Err(format!("nr_copied=\"{d}\", but the runs hold {copied}"));
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_in_the_schema_is_refused() {
        const SB: &str = "<superblock version=\"1\" region_size=\"8\" target_size=\"64\"";
        let max = u64::MAX;
        // (what, the XML, what the refusal says)
        let cases: &[(&str, String, &str)] = &[
            ("a run after the end tag",
                format!("{SB}>\n</superblock>\n<copied first=\"1\" count=\"1\"/>\n"),
                "line 3: <copied> after the end of <superblock>"),
            ("a run after an empty superblock element",
                format!("{SB}/>\n<copied first=\"1\" count=\"1\"/>\n"),
                "line 2: <copied> after the end of <superblock>"),
            ("a second superblock after the first",
                format!("{SB}/>\n{SB}/>\n"),
                "line 2: a second <superblock>"),
            ("run counts whose sum overflows",
                format!("{SB}>\n<copied first=\"0\" count=\"{max}\"/>\n<copied first=\"0\" count=\"2\"/>\n</superblock>"),
                "line 3: the runs hold more than 2^64 regions"),
            ("a run whose end overflows",
                format!("{SB}>\n<copied first=\"{max}\" count=\"2\"/>\n</superblock>"),
                "line 2: run first=\"18446744073709551615\" count=\"2\" ends past 2^64"),
        ];
        let mut failed = Vec::new();
        for (what, xml, says) in cases {
            match from_xml(xml) {
                Err(e) if e.contains(says) => {}
                r => {
                    eprintln!("case {what:?}: want an error saying {says:?}, got {r:?}");
                    failed.push(*what);
                }
            }
        }
        assert!(failed.is_empty(), "cases failed: {failed:#?}");
    }

    #[test]
    fn an_empty_superblock_element_is_closed() {
        let m =
            from_xml("<superblock version=\"1\" region_size=\"8\" target_size=\"64\"/>").unwrap();
        assert_eq!((m.nr_regions(), m.copied.len()), (8, 0));
    }

    #[test]
    fn round_trip() {
        let m = Metadata {
            region_size: 8,
            target_size: 2047,
            copied: vec![(0, 10), (255, 1)],
        };
        assert_eq!(from_xml(&to_xml(&m)).unwrap(), m);
    }

    #[test]
    fn errors_say_where() {
        let e =
            from_xml("<superblock version=\"1\" region_size=\"8\">\n</superblock>").unwrap_err();
        assert!(e.contains("line 1") && e.contains("target_size"), "{e}");
        let e = from_xml("<superblock version=\"1\" region_size=\"8\" target_size=\"64\">\n<copied first=\"x\" count=\"1\"/>\n</superblock>").unwrap_err();
        assert!(e.contains("first=\"x\""), "{e}");
        let e = from_xml("<superblock version=\"1\" region_size=\"8\" target_size=\"64\">\n\n<copy first=\"1\" count=\"1\"/>").unwrap_err();
        assert!(e.contains("line 3") && e.contains("<copy>"), "{e}");
        let e = from_xml(
            "<superblock version=\"1\" region_size=\"8\" target_size=\"64\" nr_regions=\"9\"/>",
        )
        .unwrap_err();
        assert!(e.contains("the sizes give 8"), "{e}");
        let e = from_xml("<superblock version=\"1\" region_size=\"8\" target_size=\"64\" nr_copied=\"2\">\n<copied first=\"1\" count=\"1\"/>\n</superblock>").unwrap_err();
        assert!(e.contains("runs hold 1"), "{e}");
        assert!(from_xml("").unwrap_err().contains("no <superblock>"));
        assert!(
            from_xml("<superblock version=\"2\" region_size=\"8\" target_size=\"64\"/>")
                .unwrap_err()
                .contains("version 2")
        );
        assert!(
            from_xml("<superblock version=\"1\" region_size=\"8\" target_size=\"64\">")
                .unwrap_err()
                .contains("not closed")
        );
    }
}

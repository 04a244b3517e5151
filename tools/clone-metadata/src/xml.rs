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

/// Parses the XML form; errors say where.
pub fn from_xml(text: &str) -> Result<Metadata, String> {
    let mut r = Reader::from_str(text);
    let line_of = |pos: u64| text[..(pos as usize).min(text.len())].matches('\n').count() + 1;
    let mut m: Option<Metadata> = None;
    let mut declared = None;
    let mut closed = false;
    loop {
        let pos = r.buffer_position();
        let ev = r
            .read_event()
            .map_err(|e| format!("line {}: {e}", line_of(pos)))?;
        let line = line_of(pos);
        if let Event::Empty(e) = &ev {
            if e.name().as_ref() == b"superblock" {
                closed = true;
            }
        }
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
                }
                b"copied" => {
                    let meta = m
                        .as_mut()
                        .ok_or_else(|| format!("line {line}: <copied> outside <superblock>"))?;
                    let first = need(&e, "first", line)?;
                    let count = need(&e, "count", line)?;
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
    let copied: u64 = m.copied.iter().map(|&(_, n)| n).sum();
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

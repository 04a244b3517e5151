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
//!
//! A salvaged dump (`clone_dump -r` of damaged metadata) also names the regions
//! whose state could not be read: `<unknown first=".." count=".."/>` runs (in
//! order with the copied ones, never overlapping them), counted by `nr_unknown`.
//! [`parse`] reads them into a [`Dump`]; [`from_xml`] refuses them.

use crate::read::Report;
use crate::write::Metadata;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// A dump: the metadata, and the regions whose state could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    pub metadata: Metadata,
    /// Runs `(first, count)` of regions of unknown state, in order; none in a clean dump.
    pub unknown: Vec<(u64, u64)>,
}

impl Dump {
    /// What a report read: its sizes, the copied regions and those of unknown state (their
    /// bitset word could not be read). For a report whose superblock was read.
    pub fn from_report(rep: &Report) -> Dump {
        let mut unknown = rep.unknown_runs();
        unknown.retain(|&(_, n)| n > 0);
        Dump {
            metadata: Metadata {
                region_size: rep.superblock.region_size,
                target_size: rep.superblock.target_size,
                copied: rep.copied_runs(),
            },
            unknown,
        }
    }

    /// How many regions are of unknown state.
    pub fn nr_unknown(&self) -> u64 {
        self.unknown.iter().map(|&(_, n)| n).sum()
    }

    /// The copied and unknown runs in order of their first region: `(first, count,
    /// unknown)`.
    pub fn runs(&self) -> Vec<(u64, u64, bool)> {
        let mut runs: Vec<(u64, u64, bool)> = self
            .metadata
            .copied
            .iter()
            .map(|&(f, n)| (f, n, false))
            .chain(self.unknown.iter().map(|&(f, n)| (f, n, true)))
            .collect();
        runs.sort_unstable();
        runs
    }

    /// Writes the XML form.
    pub fn write_xml(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let m = &self.metadata;
        let copied: u64 = m.copied.iter().map(|&(_, n)| n).sum();
        write!(
            out,
            "<superblock version=\"{}\" region_size=\"{}\" target_size=\"{}\" nr_regions=\"{}\" nr_copied=\"{copied}\"",
            crate::read::VERSION,
            m.region_size,
            m.target_size,
            m.nr_regions()
        )?;
        if !self.unknown.is_empty() {
            write!(out, " nr_unknown=\"{}\"", self.nr_unknown())?;
        }
        writeln!(out, ">")?;
        for (first, count, unknown) in self.runs() {
            let name = if unknown { "unknown" } else { "copied" };
            writeln!(out, "  <{name} first=\"{first}\" count=\"{count}\"/>")?;
        }
        writeln!(out, "</superblock>")
    }

    /// The metadata, the regions of unknown state made what `unknown` says.
    pub fn resolve(self, unknown: crate::cli::Unknown) -> Metadata {
        let mut m = self.metadata;
        if unknown == crate::cli::Unknown::Copied {
            m.copied = crate::write::union_runs(&m.copied, &self.unknown);
        }
        m
    }
}

/// The XML of `m`.
pub fn to_xml(m: &Metadata) -> String {
    let d = Dump {
        metadata: m.clone(),
        unknown: Vec::new(),
    };
    let mut out = Vec::new();
    // Writing to memory does not fail, and the text is ASCII.
    let _ = d.write_xml(&mut out);
    String::from_utf8_lossy(&out).into_owned()
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

/// Parses the XML form, `<unknown>` runs included; errors say where.
pub fn parse(text: &str) -> Result<Dump, String> {
    let mut r = Reader::from_str(text);
    // Line numbers are counted as the reader moves on: each byte is looked at once.
    let mut lines = Lines {
        text,
        at: 0,
        line: 1,
    };
    let mut m: Option<Metadata> = None;
    let mut declared = None;
    let mut declared_unknown = None;
    let mut closed = false;
    // The sum of the runs' counts, checked as each is read.
    let mut copied = 0u64;
    let mut unknown: Vec<(u64, u64)> = Vec::new();
    let mut nr_unknown = 0u64;
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
                    declared_unknown = attr(&e, "nr_unknown")?;
                    m = Some(meta);
                    closed = empty_superblock;
                }
                name @ (b"copied" | b"unknown") => {
                    let name = if name == b"copied" {
                        "copied"
                    } else {
                        "unknown"
                    };
                    let meta = m
                        .as_mut()
                        .ok_or_else(|| format!("line {line}: <{name}> outside <superblock>"))?;
                    if closed {
                        return Err(format!(
                            "line {line}: <{name}> after the end of <superblock>"
                        ));
                    }
                    let first = need(&e, "first", line)?;
                    let count = need(&e, "count", line)?;
                    if first.checked_add(count).is_none() {
                        return Err(format!(
                            "line {line}: run first=\"{first}\" count=\"{count}\" ends past 2^64"
                        ));
                    }
                    let n = meta.nr_regions();
                    let (sum, runs) = if name == "copied" {
                        (&mut copied, &mut meta.copied)
                    } else {
                        (&mut nr_unknown, &mut unknown)
                    };
                    *sum = sum.checked_add(count).ok_or_else(|| {
                        format!("line {line}: the runs hold more than 2^64 regions")
                    })?;
                    if name == "unknown" {
                        // Copied runs are checked when written; these never are.
                        let after = runs.last().map_or(0, |&(f, c): &(u64, u64)| f + c);
                        if count == 0 || first < after || first + count > n {
                            return Err(format!(
                                "line {line}: unknown run {first}+{count} is empty, out of order or past the last region ({n})"
                            ));
                        }
                    }
                    runs.push((first, count));
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
    if let Some(d) = declared_unknown {
        if d != nr_unknown {
            return Err(format!(
                "nr_unknown=\"{d}\", but the unknown runs hold {nr_unknown}"
            ));
        }
    }
    // No region both copied and unknown (the copied runs are in order when written).
    let (mut c, mut u) = (m.copied.iter().peekable(), unknown.iter().peekable());
    while let (Some(&&(cf, cn)), Some(&&(uf, un))) = (c.peek(), u.peek()) {
        if cf.saturating_add(cn) <= uf {
            c.next();
        } else if uf + un <= cf {
            u.next();
        } else {
            return Err(format!(
                "unknown run {uf}+{un} overlaps copied run {cf}+{cn}"
            ));
        }
    }
    Ok(Dump {
        metadata: m,
        unknown,
    })
}

/// The text of an XML file's `bytes`: text that is not UTF-8 is XML that does not parse,
/// refused saying where (for `clone_restore: <input>: <why>`).
pub fn text(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        format!("line {line}: not UTF-8 text (byte {at}): not clone_dump's XML")
    })
}

/// What `clone_restore` writes for the XML `text`: the metadata, and how many regions of
/// unknown state (`<unknown>` runs) became what `unknown` says (0 when there were none).
/// Refused, saying why (for `clone_restore: <input>: <why>`): XML that does not parse or is
/// inconsistent, and unknown runs while `unknown` is `None`. Whether the metadata fits on
/// a device is [`crate::write::write`]'s to say.
pub fn restore(
    text: &str,
    unknown: Option<crate::cli::Unknown>,
) -> Result<(Metadata, u64), String> {
    let d = parse(text)?;
    if d.unknown.is_empty() {
        return Ok((d.metadata, 0));
    }
    let n = d.nr_unknown();
    match unknown {
        None => Err(format!(
            "the state of {n} regions is unknown ({}): clone_dump -r could not read them. {}",
            crate::cli::runs_text(&d.unknown),
            crate::cli::UNKNOWN_CHOICE
        )),
        Some(u) => Ok((d.resolve(u), n)),
    }
}

/// Parses the XML form of metadata whose every region's state is known: `<unknown>`
/// runs are refused (see [`parse`]). Errors say where.
pub fn from_xml(text: &str) -> Result<Metadata, String> {
    let d = parse(text)?;
    if !d.unknown.is_empty() {
        return Err(format!(
            "the state of {} regions is unknown ({})",
            d.nr_unknown(),
            crate::cli::runs_text(&d.unknown)
        ));
    }
    Ok(d.metadata)
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
            ("an unknown run over a copied one",
                format!("{SB}>\n<copied first=\"1\" count=\"3\"/>\n<unknown first=\"3\" count=\"2\"/>\n</superblock>"),
                "unknown run 3+2 overlaps copied run 1+3"),
            ("unknown runs out of order",
                format!("{SB}>\n<unknown first=\"4\" count=\"2\"/>\n<unknown first=\"5\" count=\"1\"/>\n</superblock>"),
                "line 3: unknown run 5+1 is empty, out of order or past the last region (8)"),
            ("an unknown run past the last region",
                format!("{SB}>\n<unknown first=\"7\" count=\"2\"/>\n</superblock>"),
                "line 2: unknown run 7+2 is empty, out of order or past the last region (8)"),
            ("an empty unknown run",
                format!("{SB}>\n<unknown first=\"7\" count=\"0\"/>\n</superblock>"),
                "line 2: unknown run 7+0 is empty"),
            ("nr_unknown that does not match",
                format!("{SB} nr_unknown=\"3\">\n<unknown first=\"6\" count=\"2\"/>\n</superblock>"),
                "nr_unknown=\"3\", but the unknown runs hold 2"),
            ("an unknown run after the end tag",
                format!("{SB}/>\n<unknown first=\"1\" count=\"1\"/>\n"),
                "line 2: <unknown> after the end of <superblock>"),
            ("unknown runs where every state must be known",
                format!("{SB}>\n<unknown first=\"0\" count=\"2\"/>\n<unknown first=\"5\" count=\"1\"/>\n</superblock>"),
                "the state of 3 regions is unknown (0-1, 5)"),
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
    fn a_salvaged_dump_round_trips_and_resolves() {
        let d = Dump {
            metadata: Metadata {
                region_size: 8,
                target_size: 2047,
                copied: vec![(0, 10), (255, 1)],
            },
            unknown: vec![(10, 5), (64, 64)],
        };
        let mut x = Vec::new();
        d.write_xml(&mut x).unwrap();
        let x = String::from_utf8(x).unwrap();
        assert!(x.contains(" nr_copied=\"11\" nr_unknown=\"69\">\n  <copied first=\"0\" count=\"10\"/>\n  <unknown first=\"10\" count=\"5\"/>\n  <unknown first=\"64\" count=\"64\"/>\n  <copied first=\"255\""), "{x}");
        assert_eq!(parse(&x).unwrap(), d);
        use crate::cli::Unknown;
        assert_eq!(
            d.clone().resolve(Unknown::Uncopied).copied,
            [(0, 10), (255, 1)]
        );
        assert_eq!(
            d.resolve(Unknown::Copied).copied,
            [(0, 15), (64, 64), (255, 1)]
        );
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

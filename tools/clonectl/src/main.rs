// SPDX-License-Identifier: GPL-2.0
//! clonectl: the lifecycle of a device-mapper clone, for our target and the C one.
//!
//! ```text
//! clonectl create NAME --source DEV --dest DEV --metadata DEV [--region-size SIZE] [...] [--dry-run]
//! clonectl status [NAME] [--json]     clonectl wait NAME [--timeout SECS]
//! clonectl finish NAME                clonectl pause NAME / clonectl resume NAME
//! clonectl set NAME KEY=VALUE         clonectl list
//! ```
//!
//! It talks to device-mapper through the `devicemapper` crate (ioctls on
//! /dev/mapper/control), never through dmsetup, and uses only the upstream
//! (C) names on the wire, so tables it makes work with either module.
//! Exit status: 0 done, 1 failed (the device and the reason are said),
//! 2 usage, 3 `wait` timed out.

mod status;

use clap::{Parser, Subcommand};
use devicemapper::{DevId, DmFlags, DmName, DmOptions, DM};
use std::io::IsTerminal;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// A failure: what to tell the user (naming the device, saying what to do).
struct Fail(String);

type Res<T> = Result<T, Fail>;

fn fail<T>(msg: impl Into<String>) -> Res<T> {
    Err(Fail(msg.into()))
}

#[derive(Parser)]
#[command(version, about = "Create, watch and finish device-mapper clones")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a clone of SOURCE on DEST, usable at once, copied in the background.
    Create {
        name: String,
        /// The device to clone (opened read-only by the target, never written).
        #[arg(long)]
        source: PathBuf,
        /// The device that becomes the clone (at least as large as the source).
        #[arg(long)]
        dest: PathBuf,
        /// The metadata device (its first 4 KiB zeroed: a new clone; see clone_metadata_size).
        #[arg(long)]
        metadata: PathBuf,
        /// Region size: sectors, or with a unit (4k to 1g, a power of two).
        #[arg(long, value_parser = clone_metadata::cli::sectors, default_value = "64k")]
        region_size: u64,
        /// Do not copy in the background (regions are copied when written).
        #[arg(long)]
        no_copy: bool,
        /// Do not pass discards down to the destination.
        #[arg(long)]
        no_discard_passdown: bool,
        /// At most this many regions copied at once (default: chosen by the target).
        #[arg(long)]
        copy_threshold: Option<u32>,
        /// At most this many regions per copy job.
        #[arg(long)]
        copy_batch_size: Option<u32>,
        /// Print the table instead of creating the device.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show how far a clone is (all clones without NAME).
    Status {
        name: Option<String>,
        /// As JSON.
        #[arg(long)]
        json: bool,
        /// Seconds between the two samples that give the copy rate (0: no rate).
        #[arg(long, default_value = "1")]
        interval: f64,
    },
    /// Wait until every region is copied (a progress bar on a terminal).
    Wait {
        name: String,
        /// Give up after this many seconds (exit 3).
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Wait, then replace the clone with a linear mapping of its destination; the
    /// device stays, and no I/O fails.
    Finish {
        name: String,
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Pause the background copy.
    Pause { name: String },
    /// Resume the background copy.
    Resume { name: String },
    /// Change a setting: copy_threshold=N, copy_batch_size=N (auto where the target takes it).
    Set { name: String, setting: String },
    /// List the clones.
    List,
}

fn dm() -> Res<DM> {
    DM::new().map_err(|e| {
        Fail(format!(
            "cannot open /dev/mapper/control: {e} (run as root, with the dm_mod module loaded)"
        ))
    })
}

fn dm_name(name: &str) -> Res<&DmName> {
    DmName::new(name).map_err(|e| Fail(format!("'{name}' is not a device-mapper name: {e}")))
}

/// A block device: its `<major>:<minor>`, size in sectors, logical block size.
struct BlockDev {
    path: PathBuf,
    devno: String,
    sectors: u64,
    logical_block: u64,
}

fn sysfs(devno: &str, file: &str) -> Option<u64> {
    let base = PathBuf::from(format!("/sys/dev/block/{devno}"));
    [base.join(file), base.join("..").join(file)]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| s.trim().parse().ok())
}

fn block_dev(path: &Path, role: &str) -> Res<BlockDev> {
    let meta =
        std::fs::metadata(path).map_err(|e| Fail(format!("{role} {}: {e}", path.display())))?;
    if !meta.file_type().is_block_device() {
        return fail(format!("{role} {} is not a block device", path.display()));
    }
    let rdev = meta.rdev();
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    let devno = format!("{major}:{minor}");
    let sectors = sysfs(&devno, "size")
        .ok_or_else(|| Fail(format!("{role} {}: cannot read its size", path.display())))?;
    let logical_block = sysfs(&devno, "queue/logical_block_size").unwrap_or(512);
    Ok(BlockDev {
        path: path.to_path_buf(),
        devno,
        sectors,
        logical_block,
    })
}

/// Whether the loaded `clone` target is ours (which takes `auto` and our own options).
fn ours_loaded() -> bool {
    Path::new("/sys/module/dm_clone_rs").exists()
}

#[allow(clippy::too_many_arguments)]
fn create(
    name: &str,
    source: &Path,
    dest: &Path,
    metadata: &Path,
    region: u64,
    no_copy: bool,
    no_passdown: bool,
    threshold: Option<u32>,
    batch: Option<u32>,
    dry_run: bool,
) -> Res<()> {
    let src = block_dev(source, "source")?;
    let dst = block_dev(dest, "destination")?;
    let md = block_dev(metadata, "metadata device")?;
    for (a, b) in [(&src, &dst), (&src, &md), (&dst, &md)] {
        if a.devno == b.devno {
            return fail(format!(
                "{} and {} are the same device: the source, destination and metadata must differ",
                a.path.display(),
                b.path.display()
            ));
        }
    }
    let len = src.sectors;
    if dst.sectors < len {
        return fail(format!(
            "destination {} has {} sectors, fewer than the source {} ({len}): give a destination at least as large",
            dst.path.display(),
            dst.sectors,
            src.path.display()
        ));
    }
    for d in [&src, &dst] {
        if (region * 512) % d.logical_block != 0 {
            return fail(format!(
                "the region size ({region} sectors) is not a multiple of {}'s logical block size ({} bytes)",
                d.path.display(),
                d.logical_block
            ));
        }
    }
    let sizes = clone_metadata::size::sizes(len, region)
        .map_err(|e| Fail(format!("{}: {e}", src.path.display())))?;
    let have = md.sectors * 512;
    if have < sizes.worst_blocks * 4096 {
        return fail(format!(
            "metadata device {} has {} KiB; a clone of {} in {}-sector regions needs at least {} KiB (suggested: {} KiB, see clone_metadata_size)",
            md.path.display(),
            have / 1024,
            src.path.display(),
            region,
            sizes.worst_blocks * 4,
            sizes.suggested_bytes.div_ceil(1024)
        ));
    }
    let mut features = Vec::new();
    if no_copy {
        features.push("no_hydration");
    }
    if no_passdown {
        features.push("no_discard_passdown");
    }
    let mut core = Vec::new();
    if let Some(t) = threshold {
        core.push(format!("hydration_threshold {t}"));
    }
    if let Some(b) = batch {
        core.push(format!("hydration_batch_size {b}"));
    }
    let mut params = format!("{} {} {} {region}", md.devno, dst.devno, src.devno);
    if !features.is_empty() || !core.is_empty() {
        params.push_str(&format!(" {}", features.len()));
        for f in &features {
            params.push_str(&format!(" {f}"));
        }
    }
    if !core.is_empty() {
        params.push_str(&format!(" {}", core.len() * 2));
        for c in &core {
            params.push_str(&format!(" {c}"));
        }
    }
    if dry_run {
        println!("0 {len} clone {params}");
        return Ok(());
    }
    let dm = dm()?;
    let n = dm_name(name)?;
    let id = DevId::Name(n);
    dm.device_create(n, None, DmOptions::default())
        .map_err(|e| Fail(format!("cannot create {name}: {e}")))?;
    let loaded = dm
        .table_load(
            &id,
            &[(0, len, "clone".into(), params.clone())],
            DmOptions::default(),
        )
        .and_then(|_| dm.device_suspend(&id, DmOptions::default()));
    if let Err(e) = loaded {
        let _ = dm.device_remove(&id, DmOptions::default());
        return fail(format!(
            "the kernel refused the clone table for {name} ({e}); its reason is in the kernel log (dmesg). Table: 0 {len} clone {params}"
        ));
    }
    println!(
        "{name}: created, {len} sectors in {} regions of {region} sectors",
        sizes.regions
    );
    Ok(())
}

/// The clone's table line and status line.
fn clone_lines(dm: &DM, name: &str) -> Res<(u64, String, status::Status)> {
    let n = dm_name(name)?;
    let id = DevId::Name(n);
    let (_, table) = dm
        .table_status(
            &id,
            DmOptions::default().set_flags(DmFlags::DM_STATUS_TABLE),
        )
        .map_err(|e| {
            Fail(format!(
                "{name}: {e} (is it a device-mapper device? see clonectl list)"
            ))
        })?;
    let Some((_, len, _, params)) = table.into_iter().find(|t| t.2 == "clone") else {
        return fail(format!(
            "{name} is not a clone (its table has no clone target)"
        ));
    };
    let (_, st) = dm
        .table_status(&id, DmOptions::default())
        .map_err(|e| Fail(format!("{name}: {e}")))?;
    let line = st
        .into_iter()
        .find(|t| t.2 == "clone")
        .map(|t| t.3)
        .unwrap_or_default();
    let s = status::parse(&line).map_err(|e| Fail(format!("{name}: {e}")))?;
    Ok((len, params, s))
}

#[derive(serde::Serialize)]
struct StatusJson<'a> {
    name: &'a str,
    sectors: u64,
    #[serde(flatten)]
    status: &'a status::Status,
    percent: f64,
    /// Regions per second over the sampling interval (null: not sampled).
    rate_regions_per_s: Option<f64>,
    /// Seconds to go at that rate (null: unknown or stalled).
    eta_s: Option<f64>,
    background_copy: bool,
}

fn status_cmd(name: Option<String>, json: bool, interval: f64) -> Res<()> {
    let dm = dm()?;
    let names = match name {
        Some(n) => vec![n],
        None => clone_names(&dm)?,
    };
    for name in names {
        let (len, _, s0) = clone_lines(&dm, &name)?;
        let (s, rate) = if interval > 0.0 && !s0.done() {
            let t = Instant::now();
            std::thread::sleep(Duration::from_secs_f64(interval));
            let (_, _, s1) = clone_lines(&dm, &name)?;
            let r = s1.copied.saturating_sub(s0.copied) as f64 / t.elapsed().as_secs_f64();
            (s1, Some(r))
        } else {
            (s0, None)
        };
        let left = s.regions.saturating_sub(s.copied) as f64;
        let eta = rate
            .and_then(|r| (r > 0.0).then(|| left / r))
            .or(if s.done() { Some(0.0) } else { None });
        let background = !s
            .features
            .iter()
            .any(|f| f == "no_hydration" || f == "no_background_copy");
        if json {
            let j = StatusJson {
                name: &name,
                sectors: len,
                status: &s,
                percent: s.percent(),
                rate_regions_per_s: rate,
                eta_s: eta,
                background_copy: background,
            };
            println!("{}", serde_json::to_string(&j).unwrap_or_default());
        } else {
            println!(
                "{name}: {}/{} regions copied ({:.1}%), {} in flight, metadata {}/{} blocks, mode {}",
                s.copied,
                s.regions,
                s.percent(),
                s.in_flight,
                s.metadata_used,
                s.metadata_total,
                s.mode
            );
            let region_bytes = s.region_sectors * 512;
            match (rate, eta) {
                (Some(r), Some(e)) if !s.done() => println!(
                    "  copying {:.1} MiB/s ({r:.0} regions/s), about {e:.0} s to go",
                    r * region_bytes as f64 / 1048576.0
                ),
                (Some(_), None) => println!(
                    "  not copying now{}",
                    if background {
                        ""
                    } else {
                        " (background copy paused)"
                    }
                ),
                _ => {}
            }
            let settings: Vec<String> = s
                .core_args
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            println!(
                "  background copy {}; {}",
                if background { "on" } else { "paused" },
                settings.join(" ")
            );
        }
    }
    Ok(())
}

fn clone_names(dm: &DM) -> Res<Vec<String>> {
    let devs = dm
        .list_devices()
        .map_err(|e| Fail(format!("cannot list device-mapper devices: {e}")))?;
    let mut out = Vec::new();
    for (n, _, _) in devs {
        let id = DevId::Name(&n);
        if let Ok((_, t)) = dm.table_status(
            &id,
            DmOptions::default().set_flags(DmFlags::DM_STATUS_TABLE),
        ) {
            if t.iter().any(|t| t.2 == "clone") {
                out.push(n.to_string());
            }
        }
    }
    Ok(out)
}

/// Waits until `name` is copied; Ok(false) on timeout.
fn wait(name: &str, timeout: Option<f64>) -> Res<bool> {
    let dm = dm()?;
    let start = Instant::now();
    let (_, _, s) = clone_lines(&dm, name)?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(s.regions);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:40}] {pos}/{len} regions {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b.set_prefix(name.to_string());
        b
    });
    loop {
        let (_, _, s) = clone_lines(&dm, name)?;
        if let Some(b) = &bar {
            b.set_position(s.copied);
        }
        if s.mode != "rw" {
            return fail(format!(
                "{name}: metadata mode {}: the copy cannot be recorded any more (see dmesg)",
                s.mode
            ));
        }
        if s.done() {
            if let Some(b) = &bar {
                b.finish();
            }
            return Ok(true);
        }
        if timeout.is_some_and(|t| start.elapsed().as_secs_f64() >= t) {
            if let Some(b) = &bar {
                b.abandon();
            }
            eprintln!(
                "clonectl: {name}: {}/{} regions copied when the wait timed out",
                s.copied, s.regions
            );
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn finish(name: &str, timeout: Option<f64>) -> Res<bool> {
    if !wait(name, timeout)? {
        return Ok(false);
    }
    let dm = dm()?;
    let (len, params, _) = clone_lines(&dm, name)?;
    let (_, dest, _) = status::table_devices(&params).map_err(|e| Fail(format!("{name}: {e}")))?;
    let id = DevId::Name(dm_name(name)?);
    // Suspend (in-flight I/O completes, the clone commits), check, swap, resume.
    dm.device_suspend(&id, DmOptions::default().set_flags(DmFlags::DM_SUSPEND))
        .map_err(|e| Fail(format!("{name}: cannot suspend: {e}")))?;
    let swapped = (|| {
        let (_, _, s) = clone_lines(&dm, name)?;
        if !s.done() {
            return fail(format!("{name}: not every region is copied after all"));
        }
        dm.table_load(
            &id,
            &[(0, len, "linear".into(), format!("{dest} 0"))],
            DmOptions::default(),
        )
        .map_err(|e| Fail(format!("{name}: cannot load the linear table: {e}")))?;
        Ok(())
    })();
    let resumed = dm.device_suspend(&id, DmOptions::default());
    swapped?;
    resumed.map_err(|e| Fail(format!("{name}: cannot resume: {e}")))?;
    println!("{name}: finished: now a linear mapping of {dest}");
    Ok(true)
}

fn message(name: &str, msg: &str) -> Res<()> {
    let dm = dm()?;
    let _ = clone_lines(&dm, name)?;
    let id = DevId::Name(dm_name(name)?);
    dm.target_msg(&id, Some(0), msg)
        .map_err(|e| Fail(format!("{name}: the target refused '{msg}': {e}")))?;
    Ok(())
}

fn set(name: &str, setting: &str) -> Res<()> {
    let Some((key, value)) = setting.split_once('=') else {
        return fail(format!(
            "'{setting}' is not KEY=VALUE (copy_threshold=N, copy_batch_size=N)"
        ));
    };
    let wire = match key {
        "copy_threshold" | "hydration_threshold" => "hydration_threshold",
        "copy_batch_size" | "hydration_batch_size" => "hydration_batch_size",
        "copy_rate_limit" if ours_loaded() => "copy_rate_limit",
        "copy_rate_limit" => {
            return fail("copy_rate_limit is dm_clone_rs's: the C target has none")
        }
        _ => {
            return fail(format!(
                "unknown setting '{key}' (copy_threshold, copy_batch_size, copy_rate_limit)"
            ))
        }
    };
    if value == "auto" && !ours_loaded() {
        return fail("'auto' is dm_clone_rs's: the C target needs a number");
    }
    if value != "auto" && value.parse::<u32>().is_err() {
        return fail(format!("'{value}' is not a number (or auto)"));
    }
    message(name, &format!("{wire} {value}"))
}

fn run(cli: Cli) -> Res<ExitCode> {
    match cli.cmd {
        Cmd::Create {
            name,
            source,
            dest,
            metadata,
            region_size,
            no_copy,
            no_discard_passdown,
            copy_threshold,
            copy_batch_size,
            dry_run,
        } => create(
            &name,
            &source,
            &dest,
            &metadata,
            region_size,
            no_copy,
            no_discard_passdown,
            copy_threshold,
            copy_batch_size,
            dry_run,
        )?,
        Cmd::Status {
            name,
            json,
            interval,
        } => status_cmd(name, json, interval)?,
        Cmd::Wait { name, timeout } => {
            if !wait(&name, timeout)? {
                return Ok(ExitCode::from(3));
            }
        }
        Cmd::Finish { name, timeout } => {
            if !finish(&name, timeout)? {
                return Ok(ExitCode::from(3));
            }
        }
        Cmd::Pause { name } => message(&name, "disable_hydration")?,
        Cmd::Resume { name } => message(&name, "enable_hydration")?,
        Cmd::Set { name, setting } => set(&name, &setting)?,
        Cmd::List => {
            let dm = dm()?;
            for n in clone_names(&dm)? {
                let (_, _, s) = clone_lines(&dm, &n)?;
                println!("{n} {}/{} {}", s.copied, s.regions, s.mode);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli: Cli = match clone_metadata::cli::parse() {
        Ok(c) => c,
        Err(code) => return code,
    };
    match run(cli) {
        Ok(code) => code,
        Err(Fail(msg)) => {
            eprintln!("clonectl: {msg}");
            ExitCode::from(1)
        }
    }
}

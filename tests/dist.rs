//! The packages deploy/dist.sh builds, installed into temporary roots as a user would
//! (tar -x; dpkg-deb -x): the one executable answers as ferry and as connect-standalone,
//! and systemd accepts the unit. The test packages its own (debug) build, stripped of debug
//! information to keep the packing quick; the release packages differ only in the binary.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::ferry_bin;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds both packages from a stripped copy of this build; returns (tarball, .deb).
fn packages(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("ferry");
    run(Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&bin)
        .arg(ferry_bin()));
    let out = dir.join("dist");
    let said = run(Command::new(repo().join("deploy/dist.sh"))
        .arg("--bin")
        .arg(&bin)
        .arg("--out")
        .arg(&out)
        .arg("--fast"));
    let named: Vec<PathBuf> = said
        .lines()
        .filter_map(|l| l.strip_prefix("dist.sh: "))
        .map(PathBuf::from)
        .collect();
    assert_eq!(named.len(), 2, "{said}");
    let tarball = named
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .unwrap();
    let deb = named
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .unwrap();
    (tarball.clone(), deb.clone())
}

/// `ferry --version`, `connect-standalone --help` and `connect-distributed --help` from an
/// installed tree.
fn answers_under_both_names(bin_dir: &Path) {
    let version = run(Command::new(bin_dir.join("ferry")).arg("--version"));
    assert_eq!(
        version.trim(),
        format!("ferry {}", env!("CARGO_PKG_VERSION"))
    );
    let link = std::fs::read_link(bin_dir.join("connect-standalone")).unwrap();
    assert_eq!(
        link,
        Path::new("ferry"),
        "a relative link to the one binary"
    );
    let help = run(Command::new(bin_dir.join("connect-standalone")).arg("--help"));
    assert!(
        help.contains("Usage: connect-standalone [OPTIONS] <WORKER> <CONNECTOR>..."),
        "{help}"
    );
    let link = std::fs::read_link(bin_dir.join("connect-distributed")).unwrap();
    assert_eq!(
        link,
        Path::new("ferry"),
        "a relative link to the one binary"
    );
    let help = run(Command::new(bin_dir.join("connect-distributed")).arg("--help"));
    assert!(
        help.contains("Usage: connect-distributed [OPTIONS] <WORKER>"),
        "{help}"
    );
}

#[test]
fn the_tarball_and_the_deb_install_one_binary_under_both_names_and_a_valid_unit() {
    let dir = tempfile::tempdir().unwrap();
    let (tarball, deb) = packages(dir.path());

    // Tarball: flat, as deploy/gce-startup.sh unpacks it.
    let tar_root = dir.path().join("tar-root");
    std::fs::create_dir_all(&tar_root).unwrap();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&tar_root));
    answers_under_both_names(&tar_root);
    for f in [
        "ferry.service",
        "krb5.conf",
        "README.md",
        "examples/ztf-worker.properties",
    ] {
        assert!(tar_root.join(f).is_file(), "{f} in the tarball");
    }

    // Debian package: its fields, then its files.
    let fields = run(Command::new("dpkg-deb")
        .args(["-f"])
        .arg(&deb)
        .args(["Package", "Version", "Depends"]));
    assert!(fields.contains("Package: ferry"), "{fields}");
    assert!(
        fields.contains(&format!("Version: {}", env!("CARGO_PKG_VERSION"))),
        "{fields}"
    );
    assert!(fields.contains("libsasl2-modules-gssapi-mit"), "{fields}");
    let deb_root = dir.path().join("deb-root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&deb_root));
    answers_under_both_names(&deb_root.join("usr/bin"));
    assert!(deb_root.join("etc/ferry/connectors").is_dir());
    let control = dir.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(postinst.contains("adduser --system --group"), "{postinst}");

    // The unit: systemd's own verifier, on the installed unit with ExecStart pointing into
    // the temporary root (verify checks that the command exists). Any complaint fails.
    let unit = std::fs::read_to_string(deb_root.join("lib/systemd/system/ferry.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/ferry --log-format json standalone /etc/ferry/worker.properties /etc/ferry/connectors"),
        "{unit}"
    );
    let rooted = dir.path().join("ferry.service");
    std::fs::write(
        &rooted,
        unit.replace(
            "/usr/bin/ferry",
            deb_root.join("usr/bin/ferry").to_str().unwrap(),
        ),
    )
    .unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&rooted)
        .output();
    match verify {
        Ok(out) => {
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() && said.trim().is_empty(), "{said}");
        }
        Err(e) => {
            // tests/run.sh installs systemd; without it the unit is not verified, and says so.
            common::emulator::skip(
                "dist::the_tarball_and_the_deb_install_one_binary_under_both_names_and_a_valid_unit (unit part)",
                &format!("systemd-analyze not available: {e}"),
            );
        }
    }
}

/// The unit's layout: a directory argument stands for every `*.properties` file in it, in
/// name order; other files there are not read, and an empty directory is one clear line.
#[test]
fn a_directory_of_connector_files_is_read_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let worker = common::worker_props(dir.path(), "127.0.0.1:9092", &[]);
    let connectors = dir.path().join("connectors");
    std::fs::create_dir_all(&connectors).unwrap();
    for (file, name) in [("b.properties", "second"), ("a.properties", "first")] {
        common::write_props(
            &connectors.join(file),
            &[
                ("name", name),
                ("connector.class", "FileStreamSink"),
                ("topics", "alerts"),
            ],
        );
    }
    std::fs::write(connectors.join("README.txt"), "not a connector").unwrap();
    let out = run(Command::new(ferry_bin())
        .arg("validate")
        .arg(&worker)
        .arg(&connectors));
    let first = out.find("\nconnector first (").expect(&out);
    let second = out.find("\nconnector second (").expect(&out);
    assert!(first < second, "{out}");
    assert!(
        out.contains("OK: 1 worker file, 2 connector file(s)."),
        "{out}"
    );

    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(ferry_bin())
        .arg("validate")
        .arg(&worker)
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "ferry: error: {}: no connector files (*.properties) in this directory",
            empty.display()
        )
    );
}

//! Resolving a package's settings: the built-in defaults, overridden by the workspace's table,
//! the package's, then the flags; each value checked where it is written.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use toml::Spanned;

use super::values::{self, Origin, User};
use super::{ImageFlags, ManifestText, Settings, Table, manifest};
use crate::image::{Algorithm, Compression};
use crate::rootfs::{BaseFiles, CaCerts, Zones};
use crate::target::Arch;

/// Resolves settings from tables (lowest precedence first) and flags; relative paths in flags
/// are relative to `cwd`.
pub(crate) fn resolve(
    tables: &[(Table, ManifestText)],
    flags: &ImageFlags,
    cwd: &Path,
) -> Result<Settings> {
    let name = setting(
        tables,
        "name",
        |t| t.name.as_ref(),
        |v, o, _| values::image_name(v, o),
    )?;
    let tags = list_setting(tables, "tags", |t| t.tags.as_ref(), values::tag)?.unwrap_or_default();
    // `--entrypoint ""` clears it, as `docker run --entrypoint ""` does.
    let entrypoint = match &flags.entrypoint {
        Some(e) if e.is_empty() => Some((Vec::new(), Origin::Flag("--entrypoint"))),
        Some(e) => Some((vec![e.clone()], Origin::Flag("--entrypoint"))),
        None => last_set(tables, |t| t.entrypoint.as_ref())
            .map(|(e, s)| (e.get_ref().clone(), Origin::key(s, "entrypoint", e.span()))),
    };
    let cmd = match &flags.cmd {
        Some(cmd) => Some((cmd.clone(), Origin::Flag("--cmd"))),
        None => last_set(tables, |t| t.cmd.as_ref())
            .map(|(cmd, s)| (cmd.get_ref().clone(), Origin::key(s, "cmd", cmd.span()))),
    };
    values::program(entrypoint.as_ref(), cmd.as_ref())?;
    let entrypoint = entrypoint.map(|(e, _)| e);
    let cmd = cmd.map(|(cmd, _)| cmd).unwrap_or_default();

    let mut env = BTreeMap::new();
    for (t, s) in tables {
        for (key, value) in t.env.iter().flatten() {
            values::env_key(key.get_ref(), &Origin::key(s, "env", key.span()))?;
            env.insert(key.get_ref().clone(), value.get_ref().clone());
        }
    }
    for pair in &flags.env {
        let (key, value) = values::key_value(pair, &Origin::Flag("--env"))?;
        env.insert(key, value);
    }

    let workdir = match &flags.workdir {
        Some(dir) => Some(values::absolute(dir, &Origin::Flag("--workdir"))?),
        None => setting(
            tables,
            "workdir",
            |t| t.workdir.as_ref(),
            |v, o, _| values::absolute(v, o),
        )?,
    };
    let user = match &flags.user {
        Some(user) => values::user(user, &Origin::Flag("--user"))?,
        None => setting(
            tables,
            "user",
            |t| t.user.as_ref(),
            |v, o, _| values::user(v, o),
        )?
        .unwrap_or(User::Nonroot),
    };
    let ports = if flags.ports.is_empty() {
        list_setting(tables, "ports", |t| t.ports.as_ref(), values::port)?.unwrap_or_default()
    } else {
        flags
            .ports
            .iter()
            .map(|p| values::port(p, &Origin::Flag("--port")))
            .collect::<Result<_>>()?
    };
    let volumes = list_setting(tables, "volumes", |t| t.volumes.as_ref(), values::absolute)?
        .unwrap_or_default();
    let labels = merge_maps(tables, |t| t.labels.as_ref(), &flags.labels, "--label")?;
    let annotations = merge_maps(
        tables,
        |t| t.annotations.as_ref(),
        &flags.annotations,
        "--annotation",
    )?;
    let stop_signal = setting(
        tables,
        "stop-signal",
        |t| t.stop_signal.as_ref(),
        |v, o, _| values::signal(v, o),
    )?;

    let files = if flags.files.is_empty() {
        last_set(tables, |t| t.files.as_ref())
            .map(|(files, s)| files.iter().map(|f| values::file_entry(f, s)).collect())
            .transpose()?
            .unwrap_or_default()
    } else {
        flags
            .files
            .iter()
            .map(|f| values::file_flag(f, cwd))
            .collect::<Result<_>>()?
    };

    let zones = match &flags.tz {
        Some(tz) => values::zones_flag(tz)?,
        None => setting(tables, "tz", |t| t.tz.as_ref(), values::zones)?.unwrap_or(Zones::All),
    };
    let ca = if flags.ca_certs.is_empty() {
        setting(
            tables,
            "ca-certs",
            |t| t.ca_certs.as_ref(),
            values::ca_certs,
        )?
        .unwrap_or_default()
    } else {
        let files = flags
            .ca_certs
            .iter()
            .map(|p| values::pem_file(&cwd.join(p), &Origin::Flag("--ca-cert")));
        CaCerts {
            mozilla: true,
            extra: files.collect::<Result<_>>()?,
        }
    };
    let platforms = list_setting::<_, Vec<Vec<Arch>>>(
        tables,
        "platforms",
        |t| t.platforms.as_ref(),
        values::platform,
    )?
    .map(|lists| crate::util::unique(lists.into_iter().flatten()));

    let compression = match &flags.compression {
        Some(value) => values::compression(value, &Origin::Flag("--compression"))?,
        None => setting(
            tables,
            "compression",
            |t| t.compression.as_ref(),
            |v, o, _| values::compression(v, o),
        )?
        .unwrap_or(Compression::new(Algorithm::Gzip)),
    };
    let sign_format = match flags.sign_format {
        Some(format) => format,
        None => setting(
            tables,
            "sign-format",
            |t| t.sign_format.as_ref(),
            |v, o, _| values::sign_format(v, o),
        )?
        .unwrap_or_default(),
    };

    let capabilities = if flags.capabilities.is_empty() {
        last_set(tables, |t| t.capabilities.as_ref())
            .map(|(value, s)| values::capabilities(value, s))
            .transpose()?
            .unwrap_or_default()
    } else {
        values::capabilities_flag(&flags.capabilities)?
    };
    let strip = match flags.strip {
        Some(strip) => Some(strip),
        None => setting(
            tables,
            "strip",
            |t| t.strip.as_ref(),
            |v, o, _| values::strip(v, o),
        )?,
    };

    Ok(Settings {
        name,
        tags,
        entrypoint,
        cmd,
        env,
        workdir,
        user,
        ports,
        volumes,
        labels,
        annotations,
        stop_signal,
        files,
        base: BaseFiles { zones, ca },
        bin: last_set(tables, |t| t.bin.as_ref()).map(|(bin, _)| bin.clone()),
        bins: last_set(tables, |t| t.bins.as_ref()).map(|(bins, _)| bins.clone()),
        features: last_set(tables, |t| t.features.as_ref()).map(|(f, _)| f.clone()),
        profile: last_set(tables, |t| t.profile.as_ref()).map(|(p, _)| p.clone()),
        platforms,
        allow: last_set(tables, |t| t.allow.as_ref())
            .map(|(allow, _)| allow.clone())
            .unwrap_or_default(),
        zig: last_set(tables, |t| t.cross.as_ref())
            .is_some_and(|(c, _)| *c == manifest::Cross::Zig),
        compression,
        sign_format,
        capabilities,
        strip,
    })
}

/// A key's value in the table of highest precedence that sets it (the tables come lowest
/// first), and the file that table is in.
fn last_set<'t, V: ?Sized>(
    tables: &'t [(Table, ManifestText)],
    get: impl Fn(&'t Table) -> Option<&'t V>,
) -> Option<(&'t V, &'t ManifestText)> {
    tables.iter().rev().find_map(|(t, s)| Some((get(t)?, s)))
}

/// [`last_set`], checked by `check` with where the value is written.
fn setting<V: Borrow<B>, B: ?Sized, T>(
    tables: &[(Table, ManifestText)],
    key: &'static str,
    get: impl Fn(&Table) -> Option<&Spanned<V>>,
    check: impl FnOnce(&B, &Origin, &ManifestText) -> Result<T>,
) -> Result<Option<T>> {
    last_set(tables, get)
        .map(|(value, s)| {
            let origin = Origin::key(s, key, value.span());
            check(value.get_ref().borrow(), &origin, s)
        })
        .transpose()
}

/// [`last_set`] of a list, each item checked by `check` with where it is written.
fn list_setting<T, C: FromIterator<T>>(
    tables: &[(Table, ManifestText)],
    key: &'static str,
    get: impl Fn(&Table) -> Option<&Vec<Spanned<String>>>,
    check: impl Fn(&str, &Origin) -> Result<T>,
) -> Result<Option<C>> {
    last_set(tables, get)
        .map(|(items, s)| {
            items
                .iter()
                .map(|item| check(item.get_ref(), &Origin::key(s, key, item.span())))
                .collect()
        })
        .transpose()
}

/// Labels and annotations: workspace, then package, then flags, later ones winning per key.
fn merge_maps(
    tables: &[(Table, ManifestText)],
    get: impl Fn(&Table) -> Option<&BTreeMap<String, String>>,
    flags: &[String],
    flag: &'static str,
) -> Result<BTreeMap<String, String>> {
    let mut merged = BTreeMap::new();
    for (table, _) in tables {
        merged.extend(
            get(table)
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    for pair in flags {
        let (key, value) = values::key_value(pair, &Origin::Flag(flag))?;
        merged.insert(key, value);
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::cargo::strip::Strip;

    fn table(path: &str, text: &str, workspace: bool) -> (Table, ManifestText) {
        let dir = tempfile::tempdir().unwrap().keep();
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, text).unwrap();
        let source = ManifestText::read(&file).unwrap();
        let tables = manifest::read(&source).unwrap();
        let table = if workspace {
            tables.workspace
        } else {
            tables.package
        };
        (table.unwrap(), source)
    }

    fn workspace() -> (Table, ManifestText) {
        table(
            "Cargo.toml",
            "[workspace.metadata.scratchimg]\nuser = \"nobody\"\nports = [\"9000\"]\nenv = { A = \"ws\", B = \"ws\" }\nlabels = { team = \"core\" }\ntz = \"none\"\n",
            true,
        )
    }

    fn package() -> (Table, ManifestText) {
        table(
            "web/Cargo.toml",
            "[package]\nname = \"web\"\n[package.metadata.scratchimg]\nports = [\"8080/tcp\", \"53/udp\"]\nenv = { B = \"pkg\", C = \"pkg\" }\nworkdir = \"/srv\"\n",
            false,
        )
    }

    #[test]
    fn built_in_defaults() {
        let settings = resolve(&[], &ImageFlags::default(), Path::new("/")).unwrap();
        assert_eq!(settings.user, User::Nonroot);
        assert!(settings.ports.is_empty() && settings.env.is_empty() && settings.files.is_empty());
        assert_eq!(settings.base, BaseFiles::default());
        assert_eq!(settings.workdir, None);
    }

    #[test]
    fn package_overrides_workspace_and_flags_override_both() {
        let tables = [workspace(), package()];
        let settings = resolve(&tables, &ImageFlags::default(), Path::new("/")).unwrap();
        assert_eq!(settings.user, User::Nobody, "from the workspace");
        assert_eq!(
            settings.ports,
            BTreeSet::from(["8080/tcp".into(), "53/udp".into()]),
            "package wins"
        );
        assert_eq!(settings.env["A"], "ws");
        assert_eq!(settings.env["B"], "pkg", "maps merge, package wins per key");
        assert_eq!(settings.env["C"], "pkg");
        assert_eq!(settings.workdir.as_deref(), Some("/srv"));
        assert_eq!(settings.labels["team"], "core");
        assert_eq!(settings.base.zones, Zones::None);

        let flags = ImageFlags {
            user: Some("1000:1000".into()),
            ports: vec!["7000".into()],
            env: vec!["C=flag".into(), "D=x=y".into()],
            labels: vec!["team=edge".into()],
            tz: Some("Europe/Berlin".into()),
            ..ImageFlags::default()
        };
        let settings = resolve(&tables, &flags, Path::new("/")).unwrap();
        assert_eq!(settings.user, User::Id("1000:1000".into()));
        assert_eq!(settings.ports, BTreeSet::from(["7000/tcp".into()]));
        assert_eq!(
            (settings.env["B"].as_str(), settings.env["C"].as_str()),
            ("pkg", "flag")
        );
        assert_eq!(settings.env["D"], "x=y", "only the first `=` splits");
        assert_eq!(settings.labels["team"], "edge");
        assert_eq!(
            settings.base.zones,
            Zones::Only(BTreeSet::from(["Europe/Berlin"]))
        );
    }

    #[test]
    fn bad_values_name_file_line_and_choices() {
        let err = |text: &str| {
            let tables = [table("Cargo.toml", text, false)];
            let e = resolve(&tables, &ImageFlags::default(), Path::new("/"))
                .unwrap_err()
                .to_string();
            e.lines()
                .map(|l| {
                    l.split_once("Cargo.toml:")
                        .map_or(l.to_string(), |(_, rest)| format!("Cargo.toml:{rest}"))
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let head = "[package]\nname = \"x\"\n[package.metadata.scratchimg]\n";
        assert_eq!(
            err(&format!("{head}ports = [\"80/sctp\"]\n")),
            "Cargo.toml:4:10: `ports`: `80/sctp` is not a port\nhelp: write N, N/tcp or N/udp with N from 1 to 65535, e.g. \"8080/tcp\""
        );
        assert!(
            err(&format!("{head}env = {{ OK = \"x\", \"A=B\" = \"x\" }}\n"))
                .starts_with("Cargo.toml:4:19: `env`: key `A=B` contains `=`"),
            "the key's column, not its value's: {}",
            err(&format!("{head}env = {{ OK = \"x\", \"A=B\" = \"x\" }}\n"))
        );
        assert!(err(&format!("{head}user = \"alice\"\n")).contains(
            "help: use \"nonroot\" (the default), \"root\", \"nobody\", or a numeric UID[:GID]"
        ));
        assert!(
            err(&format!("{head}tz = [\"Europe/Berln\"]\n")).starts_with(
                "Cargo.toml:4:7: `tz`: `Europe/Berln` is not a zone of the tz database"
            )
        );
        assert!(
            err(&format!("{head}tz = \"some\"\n"))
                .contains("help: use \"all\" (the default), \"none\", or a list of zone names")
        );
        assert!(
            err(&format!("{head}ca-certs = [\"missing.pem\"]\n"))
                .contains("`ca-certs`: could not read")
        );
        assert!(
            err(&format!("{head}workdir = \"srv\"\n"))
                .contains("`workdir`: `srv` must be an absolute path")
        );
        assert!(err(&format!("{head}stop-signal = \"TERM!\"\n")).contains("is not a signal"));
        assert!(
            err(&format!(
                "{head}files = [{{ src = \"nope\", dst = \"/app/x\" }}]\n"
            ))
            .contains("`files`: `nope` does not exist")
        );
        assert!(
            err(&format!(
                "{head}files = [{{ src = \"Cargo.toml\", dst = \"app/x\" }}]\n"
            ))
            .contains("`dst` `app/x` must be an absolute path")
        );
        assert!(
            err(&format!(
                "{head}files = [{{ src = \"Cargo.toml\", dst = \"/app/../etc/x\" }}]\n"
            ))
            .contains("must not contain `..`")
        );
        assert_eq!(
            err(&format!(
                "{head}files = [{{ src = \"Cargo.toml\", dst = \"/\" }}]\n"
            )),
            "Cargo.toml:4:38: `files`: `dst` `/` is the image's root, which `files` cannot replace\n\
             help: name the path the copy gets, e.g. dst = \"/app/Cargo.toml\""
        );
        assert!(
            err(&format!(
                "{head}files = [{{ src = \"Cargo.toml\", dst = \"/app/./x\" }}]\n"
            ))
            .contains("must not contain `..` or `.`")
        );
        assert_eq!(
            err(&format!(
                "{head}files = [{{ src = \"Cargo.toml\", dst = \"/app/x\", mode = \"4755\" }}]\n"
            )),
            "Cargo.toml:4:55: `files`: mode 4755 sets the setuid or setgid bit, so the program would run with its owner's rights\n\
             help: a scratch image rarely needs that: drop the bit (e.g. mode = \"0755\"), or add allow-setuid = true to this entry"
        );
        assert!(
            err(&format!(
                "{head}files = [{{ src = \"Cargo.toml\", dst = \"/app/x\", mode = 0o2755 }}]\n"
            ))
            .contains("mode 2755 sets the setuid or setgid bit")
        );
        assert!(
            err(&format!(
                "{head}files = [{{ src = \"Cargo.toml\", dst = \"/app/x\", mode = \"0666\", allow-setuid = true }}]\n"
            ))
            .contains("mode 0666 lets every user write the files\nhelp: use e.g. mode = \"0644\", or add allow-world-writable = true to this entry")
        );
        assert_eq!(
            err(&format!("{head}entrypoint = []\n")),
            "Cargo.toml:4:14: `entrypoint`: `entrypoint` is empty and there is no `cmd`, so the image has no program to run\n\
             help: leave `entrypoint` out to run /app/<bin>, or name the program, e.g. entrypoint = [\"/app/web\"]"
        );
        assert!(
            err(&format!("{head}entrypoint = []\ncmd = []\n"))
                .contains("`entrypoint` is empty and `cmd` is too")
        );
        assert_eq!(
            err(&format!("{head}entrypoint = [\"web\", \"--serve\"]\n")),
            "Cargo.toml:4:14: `entrypoint`: the program `web` is not an absolute path\n\
             help: write where it is in the image, e.g. entrypoint = [\"/app/web\"]; a relative path depends on the working directory"
        );
        assert!(
            err(&format!("{head}entrypoint = []\ncmd = [\"./web\"]\n"))
                .starts_with("Cargo.toml:5:7: `cmd`: the program `./web` is not an absolute path")
        );
        assert!(err(&format!("{head}name = \"Web\"\n")).contains("`name`: `Web`"));
        let platforms = err(&format!(
            "{head}platforms = [\"linux/amd64\", \"linux/riscv64\"]\n"
        ));
        assert!(
            platforms.starts_with(
                "Cargo.toml:4:29: `platforms`: platform `linux/riscv64` is not supported"
            ),
            "{platforms}"
        );
    }

    #[test]
    fn setuid_and_world_writable_modes_need_the_entry_to_say_so() {
        let (table, source) = table(
            "Cargo.toml",
            "[package.metadata.scratchimg]\nfiles = [\n  { src = \"Cargo.toml\", dst = \"/app/su\", mode = \"4755\", allow-setuid = true },\n  { src = \"Cargo.toml\", dst = \"/srv/\", mode = \"0666\", allow-world-writable = true },\n]\n",
            false,
        );
        let settings = resolve(&[(table, source)], &ImageFlags::default(), Path::new("/")).unwrap();
        let modes: Vec<_> = settings.files.iter().map(|f| f.mode).collect();
        assert_eq!(modes, [Some(0o4755), Some(0o666)]);
    }

    #[test]
    fn capabilities_for_every_binary_or_each_and_strip() {
        let head = "[package]\nname = \"x\"\n[package.metadata.scratchimg]\n";
        let resolved = |text: &str, flags: &ImageFlags| {
            let (table, source) = table("Cargo.toml", &format!("{head}{text}"), false);
            resolve(&[(table, source)], flags, Path::new("/"))
        };
        let none = ImageFlags::default();
        let every = resolved(
            "capabilities = [\"CAP_NET_BIND_SERVICE\"]\nstrip = \"debuginfo\"\n",
            &none,
        )
        .unwrap();
        assert_eq!(every.capabilities.of("any").names(), ["net_bind_service"]);
        assert_eq!(every.strip, Some(Strip::Debuginfo));
        let each = resolved(
            "capabilities = { web = [\"net_raw\", \"Net_Bind_Service\"] }\n",
            &none,
        )
        .unwrap();
        assert_eq!(
            each.capabilities.of("web").names(),
            ["net_bind_service", "net_raw"]
        );
        assert!(each.capabilities.of("migrate").is_empty() && each.strip.is_none());
        // --cap and --strip win over the settings.
        let flags = ImageFlags {
            capabilities: vec!["sys_time".into()],
            strip: Some(Strip::None),
            ..ImageFlags::default()
        };
        let flagged = resolved(
            "capabilities = { web = [\"net_raw\"] }\nstrip = \"debuginfo\"\n",
            &flags,
        )
        .unwrap();
        assert_eq!(flagged.capabilities.of("migrate").names(), ["sys_time"]);
        assert_eq!(flagged.strip, Some(Strip::None));
        let unknown = resolved("capabilities = { web = [\"bind_low_ports\"] }\n", &none)
            .unwrap_err()
            .to_string();
        assert!(
            unknown.contains("Cargo.toml:4:25: `capabilities`: `bind_low_ports` is not a capability\nhelp: capabilities(7) names them, with or without CAP_, in any case: chown, dac_override,"),
            "{unknown}"
        );
        let flag = ImageFlags {
            capabilities: vec!["admin".into()],
            ..ImageFlags::default()
        };
        assert!(
            resolve(&[], &flag, Path::new("/"))
                .unwrap_err()
                .to_string()
                .starts_with("--cap: `admin` is not a capability")
        );
        let strip = resolved("strip = \"all\"\n", &none)
            .unwrap_err()
            .to_string();
        assert!(strip.contains("`strip`: `all` is not a choice"), "{strip}");
    }

    #[test]
    fn an_empty_entrypoint_runs_cmd() {
        let (table, source) = table(
            "Cargo.toml",
            "[package.metadata.scratchimg]\nentrypoint = []\ncmd = [\"/app/web\", \"--serve\"]\n",
            false,
        );
        let settings = resolve(&[(table, source)], &ImageFlags::default(), Path::new("/")).unwrap();
        let run = settings.run_config(&["web".into()], &BTreeMap::new());
        assert!(run.entrypoint.is_empty());
        assert_eq!(run.cmd, ["/app/web", "--serve"]);
        // `--entrypoint ""` clears it as docker's does, and then needs `--cmd`.
        let flags = |cmd: Option<Vec<String>>| ImageFlags {
            entrypoint: Some(String::new()),
            cmd,
            ..ImageFlags::default()
        };
        let err = resolve(&[], &flags(None), Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--entrypoint: `entrypoint` is empty and there is no `cmd`"),
            "{err}"
        );
        let settings = resolve(&[], &flags(Some(vec!["/app/x".into()])), Path::new("/")).unwrap();
        assert_eq!(settings.entrypoint, Some(Vec::new()));
        let err = resolve(
            &[],
            &ImageFlags {
                entrypoint: Some("app/x".into()),
                ..ImageFlags::default()
            },
            Path::new("/"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("--entrypoint: the program `app/x` is not an absolute path"),
            "{err}"
        );
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let err = |flags: ImageFlags| {
            resolve(&[], &flags, Path::new("/"))
                .unwrap_err()
                .to_string()
        };
        assert!(
            err(ImageFlags {
                env: vec!["NOVALUE".into()],
                ..Default::default()
            })
            .starts_with("--env `NOVALUE`: expected KEY=VALUE")
        );
        assert!(
            err(ImageFlags {
                ports: vec!["http".into()],
                ..Default::default()
            })
            .starts_with("--port: `http` is not a port")
        );
        assert!(
            err(ImageFlags {
                files: vec!["nocolon".into()],
                ..Default::default()
            })
            .starts_with("--file `nocolon`: expected SRC:DST")
        );
        assert!(
            err(ImageFlags {
                tz: Some("Mars/Olympus".into()),
                ..Default::default()
            })
            .contains("is not a zone")
        );
    }
}

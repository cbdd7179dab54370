//! The user's book under docs/: it builds with the pinned mdBook without a warning, every link
//! and anchor inside it (and every chapter `--help` names) resolves, and in headless Chromium
//! each page renders with its scripts and the search finds a setting by name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use scratchimg_tests::book::mdbook;
use scratchimg_tests::{repo_root, require_tool, run_ok, tool};

/// The book, built once per test process into a folder of its own.
fn built_book() -> &'static Path {
    static BOOK: OnceLock<tempfile::TempDir> = OnceLock::new();
    BOOK.get_or_init(|| {
        let out = tempfile::tempdir().unwrap();
        let output = Command::new(mdbook())
            .arg("build")
            .arg(repo_root().join("docs"))
            .arg("--dest-dir")
            .arg(out.path())
            .output()
            .expect("mdbook runs");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "mdbook build docs failed:\n{said}");
        let warnings: Vec<&str> = said
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        assert!(
            warnings.is_empty(),
            "mdbook build docs warned:\n{}",
            warnings.join("\n")
        );
        out
    })
    .path()
}

/// `site-url` of docs/book.toml: where the book is served, which absolute links start with.
fn site_url() -> String {
    let config = std::fs::read_to_string(repo_root().join("docs/book.toml")).unwrap();
    config
        .lines()
        .find_map(|l| {
            l.strip_prefix("site-url = ")?
                .trim()
                .strip_prefix('"')?
                .strip_suffix('"')
        })
        .expect("docs/book.toml sets site-url")
        .to_string()
}

/// Every value of `attribute="…"` in `html`, entities decoded.
fn attributes(html: &str, attribute: &str) -> Vec<String> {
    let needle = format!(" {attribute}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let value = &html[at + needle.len()..];
            value[..value.find('"').unwrap_or(value.len())]
                .replace("&amp;", "&")
                .replace("&quot;", "\"")
        })
        .collect()
}

/// The book's pages, each with the ids it holds.
fn pages(book: &Path) -> BTreeMap<PathBuf, (String, BTreeSet<String>)> {
    let mut pages = BTreeMap::new();
    let mut folders = vec![book.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "html") {
                let html = std::fs::read_to_string(&path).unwrap();
                let ids = attributes(&html, "id").into_iter().collect();
                pages.insert(path, (html, ids));
            }
        }
    }
    pages
}

/// Where a link of `page` leads inside `book`, and its fragment; `None` for other sites.
fn target(
    book: &Path,
    page: &Path,
    html: &str,
    link: &str,
    site: &str,
) -> Option<(PathBuf, String)> {
    if link.contains("://") || link.starts_with("//") || link.starts_with("mailto:") {
        return None;
    }
    let (path, fragment) = link.split_once('#').unwrap_or((link, ""));
    let path = path.split('?').next().unwrap_or(path);
    // A page with a <base> (404.html, served from anywhere) links from the site's root.
    let base = html.find("<base href=\"").map(|at| {
        let base = &html[at + "<base href=\"".len()..];
        book.join(base[..base.find('"').unwrap()].trim_start_matches(site))
    });
    let resolved = match path.strip_prefix(site) {
        _ if path.is_empty() => page.to_path_buf(),
        Some(inside) => book.join(inside),
        None => base
            .unwrap_or_else(|| page.parent().unwrap().to_path_buf())
            .join(path),
    };
    let resolved = if resolved.is_dir() {
        resolved.join("index.html")
    } else {
        resolved
    };
    Some((normalize(&resolved), fragment.to_string()))
}

/// `a/b/../c` as `a/c`, without asking the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                normal.pop();
            }
            std::path::Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}

#[test]
fn every_link_and_anchor_of_the_book_resolves() {
    let book = built_book();
    let site = site_url();
    let pages = pages(book);
    let mut broken = Vec::new();
    for (page, (html, _)) in &pages {
        let links = attributes(html, "href")
            .into_iter()
            .chain(attributes(html, "src"));
        for link in links {
            let Some((path, fragment)) = target(book, page, html, &link, &site) else {
                continue;
            };
            let shown = page.strip_prefix(book).unwrap().display();
            if !path.is_file() {
                broken.push(format!("{shown}: `{link}` leads to no file"));
            } else if !fragment.is_empty()
                && pages
                    .get(&path)
                    .is_some_and(|(_, ids)| !ids.contains(&fragment))
            {
                broken.push(format!("{shown}: `{link}` names no anchor of its page"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken links in the book:\n  {}",
        broken.join("\n  ")
    );
    // The test sees a broken link: one to a missing anchor is found.
    let (page, (html, _)) = pages
        .iter()
        .find(|(p, _)| p.ends_with("settings.html"))
        .unwrap();
    let (path, fragment) = target(book, page, html, "ci.html#no-such-section", &site).unwrap();
    assert!(path.is_file() && !pages[&path].1.contains(&fragment));
}

#[test]
fn every_chapter_help_names_is_in_the_book() {
    let book = built_book();
    let pages = pages(book);
    let dir = tempfile::tempdir().unwrap();
    let mut named = 0;
    for command in [&[][..], &["run"], &["resolve"], &["index"], &["verify"]] {
        let help = run_ok(tool(dir.path()).args(command).arg("--help"));
        let (_, see) = help
            .split_once("See the book, ")
            .unwrap_or_else(|| panic!("`cargo scratchimg {command:?} --help` names no chapter"));
        let (address, chapters) = see.split_once(":\n").unwrap();
        assert!(
            address.starts_with("https://") && address.ends_with(&site_url()),
            "{address}"
        );
        for line in chapters.lines().take_while(|l| l.starts_with("  ")) {
            let link = line.split_whitespace().last().unwrap();
            let (page, fragment) = link.split_once('#').unwrap_or((link, ""));
            let ids = pages
                .get(&book.join(page))
                .map(|(_, ids)| ids)
                .unwrap_or_else(|| panic!("--help names {link}, and the book has no {page}"));
            assert!(
                fragment.is_empty() || ids.contains(fragment),
                "--help names {link}, which {page} lacks"
            );
            named += 1;
        }
    }
    assert!(named >= 10, "{named} chapters named");
}

/// The page at `url` as Chromium leaves it once its scripts have run: headless, with a new
/// empty profile, and nothing fetched from elsewhere.
fn rendered(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new("timeout")
        .args(["--kill-after=5", "60", "chromium"])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            // Lets the search index, a script loaded after the page, arrive before the dump.
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium --dump-dom {url} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn pages_render_in_chromium_and_the_search_finds_a_setting() {
    require_tool("chromium", &["--version"]);
    let book = built_book();
    let chapters: Vec<String> = std::fs::read_dir(repo_root().join("docs/src"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            Some(name.strip_suffix(".md")?.to_string()).filter(|n| n != "SUMMARY")
        })
        .collect();
    assert!(chapters.len() >= 13, "{chapters:?}");
    for chapter in &chapters {
        let dom = rendered(&format!("file://{}/{chapter}.html", book.display()));
        // The title, and the table of contents the book's script builds: the scripts ran.
        assert!(
            dom.contains("<h1 id="),
            "{chapter}.html has no title:\n{dom}"
        );
        let toc = &dom[dom.find("<ol class=\"chapter\">").unwrap_or_else(|| {
            panic!("{chapter}.html has no table of contents: its scripts did not run")
        })..];
        for other in &chapters {
            assert!(
                toc.contains(&format!("href=\"{other}.html\"")),
                "the table of contents of {chapter}.html has no {other}.html"
            );
        }
    }
    // A setting found by name, in the settings reference's table of keys.
    let dom = rendered(&format!(
        "file://{}/index.html?search=stop-signal",
        book.display()
    ));
    let results = &dom[dom
        .find("id=\"mdbook-searchresults\"")
        .expect("the search shows its results")..];
    let results = &results[..results.find("</ul>").unwrap()];
    assert!(
        results.contains("href=\"settings.html?highlight=stop-signal#keys\""),
        "searching stop-signal does not find the settings reference's keys:\n{results}"
    );
}

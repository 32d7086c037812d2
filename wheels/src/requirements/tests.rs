use super::*;

fn parse(text: &str) -> Requirements {
    text.parse().unwrap()
}

fn err(text: &str) -> String {
    let e = text.parse::<Requirements>().unwrap_err();
    let mut s = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

fn direct(e: &Entry) -> &Direct {
    match &e.source {
        Source::Direct(d) => d,
        Source::Pep508(r) => panic!("not direct: {r}"),
    }
}

#[test]
fn pip_syntax() {
    let r = parse(
        "# comment\n--index-url https://example.com/simple\n--extra-index-url=https://download.pytorch.org/whl/cu121\n\
         -f https://example.com/links.html\n--pre\nnumpy>=1.20 # trailing\nrequests[socks] ; python_version >= '3.8'\n\
         pkg @ https://example.com/pkg-1.0-py3-none-any.whl#sha256=abc\nscipy==1.11.0 \\\n  --hash=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
    );
    assert_eq!(
        r.index_url.as_ref().unwrap().as_str(),
        "https://example.com/simple/"
    );
    assert_eq!(
        r.extra_index_urls[0].as_str(),
        "https://download.pytorch.org/whl/cu121/"
    );
    assert!(r.pre);
    assert_eq!(r.find_links.len(), 1);
    let names: Vec<_> = r
        .requirements
        .iter()
        .map(|e| e.source.name().unwrap().to_string())
        .collect();
    assert_eq!(names, ["numpy", "requests", "pkg", "scipy"]);
    assert_eq!(r.requirements[3].hashes.len(), 1);
    assert!(r.requirements[3].origin.ends_with(":9"));
    assert!(r.hash_checking());
    assert!(!parse("numpy\n").hash_checking());
    assert!(parse("--require-hashes\n").hash_checking());
}

#[test]
fn several_options_on_one_line() {
    // A real project's line: `--pre` then find-links on the same line.
    let r = parse("--pre -f https://example.com/wheels\n--only-binary=:all: --no-binary foo\n");
    assert!(r.pre);
    assert_eq!(
        r.find_links,
        [FindLinks::Url(
            Url::parse("https://example.com/wheels").unwrap()
        )]
    );
    let name = |n: &str| PackageName::new(n.to_string()).unwrap();
    assert!(!r.format.allowed(&name("bar")).sdist);
    assert!(!r.format.allowed(&name("foo")).wheel);
    // Abbreviated long options, as optparse takes them; `-fDIR`.
    let r = parse("--extra-index https://x/simple\n-f./wheels\n--prefer-binary\n");
    assert_eq!(r.extra_index_urls[0].as_str(), "https://x/simple/");
    assert_eq!(r.find_links, [FindLinks::Dir(PathBuf::from("./wheels"))]);
    assert!(r.format.prefer_binary);
}

#[test]
fn byte_order_mark_is_accepted() {
    let r = parse("\u{feff}numpy==1.26.4\n");
    assert_eq!(r.requirements[0].source.name().unwrap().as_ref(), "numpy");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("requirements.txt");
    std::fs::write(&f, b"\xEF\xBB\xBFsix\n").unwrap();
    let r = parse_file(&f, &ParseOptions::default()).unwrap();
    assert_eq!(r.requirements.len(), 1);
    std::fs::write(&f, b"caf\xE9\n").unwrap();
    let e = parse_file(&f, &ParseOptions::default()).unwrap_err();
    assert!(e.to_string().contains("not valid UTF-8"), "{e}");
}

#[test]
fn strips_cog_with_a_warning() {
    let r = parse("cog==0.9.0\ncoglet\ntorch\n");
    assert_eq!(r.requirements.len(), 1);
    assert_eq!(r.warnings.len(), 2);
    assert!(r.warnings[0].contains("cog==0.9.0"), "{:?}", r.warnings);
}

#[test]
fn errors_name_file_and_line() {
    let e = err("numpy\nnot a ===valid req!!\n");
    assert!(
        e.starts_with("requirements.txt:2: invalid requirement"),
        "{e}"
    );
    assert_eq!(
        err("--frobnicate\n"),
        "requirements.txt:1: unsupported option \"--frobnicate\" (pip would refuse it too: it is not a requirements-file option)"
    );
    assert!(err("x==1 --hash=md5:abc\n").contains("md5"));
    assert!(err("x==1 --pre\n").contains("cannot follow a requirement"));
    assert!(err("x==1 --config-settings=a=b\n").contains("build backend"));
    assert!(err("--index-url\n").contains("needs a value"));
    assert!(err("--pre=1\n").contains("takes no value"));
    assert!(err("hg+https://h/r#egg=x\n").contains("only git"));
    assert!(err("https://h/r/readme.md\n").contains("not a wheel or source archive"));
    assert!(err("x @ https://h/y-1.0-py3-none-any.whl\n").contains("for package `y`"));
    assert!(err("-c https://h/c.txt\n").contains("from URLs"));
}

#[test]
fn urls_and_vcs() {
    let r = parse(
        "https://h/d/torch-2.1.0%2Bcu121-cp311-cp311-linux_x86_64.whl\n\
         https://h/archive/main.zip ; python_version >= '3'\n\
         git+https://h/org/repo.git@v1#egg=Repo[x]&subdirectory=py\n\
         git+https://h/org/other\n\
         named @ git+https://h/org/named@main\n\
         https://h/fire-0.6.0.tar.gz#sha256=AB\n",
    );
    let d: Vec<&Direct> = r.requirements.iter().map(direct).collect();
    assert_eq!(d[0].name.as_ref().unwrap().as_ref(), "torch");
    assert!(matches!(&d[0].location, Location::Url(_)));
    assert_eq!(d[1].name, None);
    assert!(!d[1].marker.is_true());
    let Location::Git(g) = &d[2].location else {
        panic!()
    };
    assert_eq!(d[2].name.as_ref().unwrap().as_ref(), "repo");
    assert_eq!(d[2].extras.len(), 1);
    assert_eq!(g.rev.as_deref(), Some("v1"));
    assert_eq!(g.subdirectory.as_deref(), Some("py"));
    assert_eq!(d[3].name, None);
    assert_eq!(d[4].name.as_ref().unwrap().as_ref(), "named");
    assert!(matches!(&d[4].location, Location::Git(g) if g.rev.as_deref() == Some("main")));
    assert_eq!(d[5].name.as_ref().unwrap().as_ref(), "fire");
    // Different revisions are different inputs.
    assert_ne!(
        parse("git+https://h/r@a#egg=r\n").input_hash(),
        parse("git+https://h/r@b#egg=r\n").input_hash()
    );
}

#[test]
fn editable_lines() {
    let r = parse("-e git+https://h/org/repo.git@v1#egg=repo\n");
    assert!(r.requirements[0].editable);
    assert!(
        r.warnings[0].contains("installed as a regular package"),
        "{:?}",
        r.warnings
    );
    let e = err("-e .\n");
    assert!(e.contains("editable requirement `-e .`"), "{e}");
    assert!(e.contains("build it into a wheel or sdist"), "{e}");
    assert!(err("-e https://h/x-1.0.tar.gz\n").contains("development mode"));
}

#[test]
fn credentials_are_masked_in_messages() {
    // SAFETY: no other test reads this variable.
    unsafe { std::env::set_var("COG_RS_TEST_PASSWORD", "hunter2") };
    let r = parse("pkg @ https://me:${COG_RS_TEST_PASSWORD}@h/pkg-1.0.tar.gz\n");
    assert_eq!(
        r.requirements[0].text,
        "pkg @ https://me:****@h/pkg-1.0.tar.gz"
    );
    let Location::Url(u) = &direct(&r.requirements[0]).location else {
        panic!()
    };
    assert_eq!(u.password(), Some("hunter2"));
}

#[test]
fn includes_constraints_and_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::create_dir(d.join("proj")).unwrap();
    std::fs::write(d.join("sub/foo-1.0-py3-none-any.whl"), b"zip").unwrap();
    std::fs::write(d.join("sub/main.tar.gz"), b"tgz").unwrap();
    std::fs::write(d.join("c.txt"), "numpy<2\n").unwrap();
    std::fs::write(d.join("base.txt"), "-c c.txt\npillow\n").unwrap();
    std::fs::write(
        d.join("req.txt"),
        "-r base.txt\nnumpy\nsub/foo-1.0-py3-none-any.whl\n./sub/main.tar.gz\n",
    )
    .unwrap();
    let opts = ParseOptions {
        project_dir: Some(d.to_path_buf()),
    };
    let r = parse_file(&d.join("req.txt"), &opts).unwrap();
    assert_eq!(r.constraints.len(), 1);
    assert_eq!(r.requirements.len(), 4);
    assert_eq!(
        direct(&r.requirements[2]).name.as_ref().unwrap().as_ref(),
        "foo"
    );
    // An sdist whose file name does not say its name: read from its metadata later.
    assert_eq!(direct(&r.requirements[3]).name, None);
    let h1 = r.input_hash();
    std::fs::write(d.join("c.txt"), "numpy<3\n").unwrap();
    assert_ne!(
        parse_file(&d.join("req.txt"), &opts).unwrap().input_hash(),
        h1
    );

    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("bar-1.0-py3-none-any.whl"), b"zip").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("bar-1.0-py3-none-any.whl"),
        d.join("bar-1.0-py3-none-any.whl"),
    )
    .unwrap();
    std::fs::write(d.join("bad.txt"), "bar-1.0-py3-none-any.whl\n").unwrap();
    let e = parse_file(&d.join("bad.txt"), &opts).unwrap_err();
    assert!(
        e.to_string().contains("outside the project directory"),
        "{e}"
    );
    std::fs::write(d.join("missing.txt"), "./nope-1.0-py3-none-any.whl\n").unwrap();
    assert!(parse_file(&d.join("missing.txt"), &opts).is_err());
    std::fs::write(d.join("dir.txt"), "./proj\n").unwrap();
    let e = parse_file(&d.join("dir.txt"), &opts).unwrap_err();
    assert!(e.to_string().contains("is a local directory"), "{e}");
    std::fs::write(d.join("cycle.txt"), "-r cycle.txt\n").unwrap();
    let e = parse_file(&d.join("cycle.txt"), &opts).unwrap_err();
    assert!(e.to_string().contains("includes itself"), "{e}");
}

#[test]
fn python_packages() {
    let r = from_packages(&["numpy==1.26.4".into(), "pillow".into()], Path::new(".")).unwrap();
    assert_eq!(r.requirements.len(), 2);
}

//! `outcore info` tests.

#[allow(unused_imports)]
use crate::common::*;
use crate::require_numpy;

/// numpy's view of a .npy file: descr, shape, fortran_order, version, data offset.
const NP_HEADER: &str = "
out = []
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        v = np.lib.format.read_magic(f)
        if v == (1, 0):
            shape, fo, dt = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fo, dt = np.lib.format.read_array_header_2_0(f)
        off = f.tell()
    out.append(dict(descr=dt.str, shape=list(shape), fortran_order=fo,
                    version='%d.%d' % v, data_offset=off,
                    size=int(np.prod(shape)), nbytes=int(np.prod(shape)) * dt.itemsize))
print(json.dumps(out))
";

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn every_dtype_layout_and_version_matches_numpy() {
    require_numpy!();
    let dir = tmpdir();
    let mut files = Vec::new();
    for (_, np_name) in DTYPES {
        for (tag, make, version) in [
            ("1d", "np.arange(7)", "(1, 0)"),
            ("2d", "np.arange(12).reshape(3, 4)", "(1, 0)"),
            (
                "f",
                "np.asfortranarray(np.arange(12).reshape(3, 4))",
                "(1, 0)",
            ),
            ("v2", "np.arange(24).reshape(2, 3, 4)", "(2, 0)"),
        ] {
            let path = p(dir.path(), &format!("{np_name}-{tag}.npy"));
            python(
                &format!(
                    "a = ({make}).astype(np.{np_name})\nwith open(sys.argv[1], 'wb') as f:\n    np.lib.format.write_array(f, a, version={version})"
                ),
                &[s(&path)],
            );
            files.push(path);
        }
    }
    let names: Vec<&str> = files.iter().map(|f| s(f)).collect();
    let want: Vec<serde_json::Value> =
        serde_json::from_str(&python(NP_HEADER, &names)).expect("numpy json");
    let mut args = vec!["info", "--json"];
    args.extend(&names);
    let got = json_lines(&outcore(&args).ok().stdout);
    assert_eq!(got.len(), files.len());
    for ((g, w), f) in got.iter().zip(&want).zip(&files) {
        let size = std::fs::metadata(f).unwrap().len();
        assert_eq!(g["file"], s(f));
        assert_eq!(g["format"], "npy");
        assert_eq!(g["descr"], w["descr"], "{}", f.display());
        assert_eq!(g["shape"], w["shape"], "{}", f.display());
        assert_eq!(g["fortran_order"], w["fortran_order"], "{}", f.display());
        assert_eq!(g["version"], w["version"], "{}", f.display());
        assert_eq!(g["data_offset"], w["data_offset"], "{}", f.display());
        assert_eq!(g["elements"], w["size"]);
        assert_eq!(g["data_bytes"], w["nbytes"]);
        assert_eq!(g["file_bytes"], size);
    }
    // The text form: one block per file, separated by blank lines.
    let text = outcore(&["info", names[2], names[3]]).ok().stdout;
    let blocks: Vec<&str> = text.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{text}");
    assert!(blocks[0].starts_with(names[2]), "{text}");
    assert!(blocks[0].contains("order        F"), "{text}");
    assert!(blocks[0].contains("shape        (3, 4)"), "{text}");
    assert!(blocks[1].contains(".npy version 2.0"), "{text}");
    assert!(blocks[1].contains("shape        (2, 3, 4)"), "{text}");
}

#[test]
fn raw_files_need_and_take_a_dtype() {
    let dir = tmpdir();
    let raw = p(dir.path(), "x.raw");
    std::fs::write(&raw, [0u8; 48]).unwrap();
    let g = json_lines(
        &outcore(&["info", s(&raw), "--dtype", "f32", "--json"])
            .ok()
            .stdout,
    );
    assert_eq!(g.len(), 1);
    assert_eq!(g[0]["format"], "raw");
    assert_eq!(g[0]["dtype"], "f32");
    assert_eq!(g[0]["descr"], "<f4");
    assert_eq!(g[0]["shape"], serde_json::json!([12]));
    assert_eq!(g[0]["version"], serde_json::Value::Null);
    assert_eq!(g[0]["data_offset"], 0);
    assert_eq!(g[0]["data_bytes"], 48);
    let r = outcore(&["info", s(&raw)]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("--dtype"), "{}", r.stderr);
}

#[test]
fn residency_follows_the_page_cache() {
    let dir = tmpdir();
    let raw = p(dir.path(), "cache.raw");
    std::fs::write(&raw, vec![7u8; 8 << 20]).unwrap();
    let resident = |path: &std::path::Path| -> (u64, f64) {
        let g = json_lines(
            &outcore(&["info", s(path), "--dtype", "u8", "--json"])
                .ok()
                .stdout,
        );
        (
            g[0]["resident_bytes"].as_u64().unwrap(),
            g[0]["resident_percent"].as_f64().unwrap(),
        )
    };
    // Read it all (as `cat FILE > /dev/null` does): fully resident.
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("cat '{}' > /dev/null", s(&raw)))
        .status()
        .unwrap();
    assert!(st.success());
    let (bytes, pct) = resident(&raw);
    assert_eq!(bytes, 8 << 20);
    assert_eq!(pct, 100.0);
    // Evict it: sync, then drop its clean pages from the cache.
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "sync '{0}' && dd if='{0}' iflag=nocache count=0 status=none",
            s(&raw)
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let (bytes, pct) = resident(&raw);
    assert!(
        bytes < 4 << 20,
        "{bytes} bytes still resident after eviction"
    );
    assert!(pct < 50.0);
    // The text form says it too.
    let text = outcore(&["info", s(&raw), "--dtype", "u8"]).ok().stdout;
    assert!(text.contains("resident"), "{text}");
}

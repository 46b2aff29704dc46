//! Every shipped campaign file loads and validates (fields, values, fault schedule shape).

#[test]
fn every_shipped_campaign_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            splitbrain::campaign::load(&path).unwrap_or_else(|e| panic!("{e}"));
            count += 1;
        }
    }
    assert!(count >= 10, "only {count} campaign files");
}

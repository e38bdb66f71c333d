//! The report as CSV for spreadsheets: one row per drill and one per breach
//! period, told apart by `record_type`, with RFC 3339 times and seconds as
//! plain numbers so a spreadsheet can compute with them.

use super::Report;

const HEADER: [&str; 14] = [
    "record_type",
    "plan",
    "region",
    "id",
    "start",
    "end",
    "passed",
    "met_objectives",
    "rto_seconds",
    "rpo_seconds",
    "rto_objective_seconds",
    "rpo_objective_seconds",
    "worst_exposure_seconds",
    "duration_seconds",
];

fn num(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// The report as CSV text: the header, then per plan its drills (oldest
/// first) and its breach periods (region by region). Fields that do not
/// apply to a row are empty.
pub fn render_csv(r: &Report) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADER)?;
    for p in &r.plans {
        let rto_obj = p.rto_objective_seconds.to_string();
        let rpo_obj = p.rpo_objective_seconds.to_string();
        for d in &p.drills.history {
            w.write_record([
                "drill",
                &p.name,
                &d.region,
                &d.id.to_string(),
                &d.started_at,
                d.finished_at.as_deref().unwrap_or(""),
                &d.passed.to_string(),
                &d.met_objectives.to_string(),
                &num(d.rto_seconds),
                &num(d.rpo_seconds),
                &rto_obj,
                &rpo_obj,
                "",
                "",
            ])?;
        }
        for region in &p.regions {
            for b in &region.breaches {
                w.write_record([
                    "breach",
                    &p.name,
                    &region.region,
                    "",
                    &b.start,
                    &b.end,
                    "",
                    "",
                    "",
                    "",
                    &rto_obj,
                    &rpo_obj,
                    &b.worst_exposure_seconds.to_string(),
                    &b.duration_seconds.to_string(),
                ])?;
            }
        }
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    // Every field written above is UTF-8, so the buffer is too.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

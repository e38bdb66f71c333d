//! Every plan validation rule, with its exact message and position, and
//! hostile plan files that must give an error, never a panic or a hang.

use std::path::Path;
use std::time::{Duration, Instant};

use rstest::rstest;

use crate::common::*;

const BASE: &str = r#"name = "orders"
owner = "payments@example.com"
rto = "1h"
rpo = "30m"

[backup]
schedule = "*/15 * * * *"
timezone = "UTC"
jitter = "2m"
primary_region = "us-east-1"
copy_to = ["us-west-2"]

[regions.us-east-1]
vault = "file:///tmp/a"
[regions.us-west-2]
vault = "file:///tmp/b"

[[resources]]
name = "db"
kind = "sqlite"
path = "/tmp/app.db"

[drill]
schedule = "0 3 * * SUN"
region = "us-west-2"
isolate_primary = true

[[drill.checks]]
resource = "db"
sql = "SELECT 1"
"#;

fn diagnostics(text: &str) -> Vec<String> {
    match lifeboat::plan::parse_plan(Path::new("p.toml"), text) {
        Ok((_, warnings)) => warnings.iter().map(|d| d.to_string()).collect(),
        Err(e) => e.diagnostics.iter().map(|d| d.to_string()).collect(),
    }
}

#[test]
fn the_base_plan_is_valid_without_warnings() {
    let (plan, warnings) = lifeboat::plan::parse_plan(Path::new("p.toml"), BASE).expect("valid");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(plan.name, "orders");
    assert_eq!(plan.drill.region, "us-west-2");
}

#[rstest]
#[case::syntax(
    "rto = \"1h\"",
    "rto = \"1h",
    "p.toml:3:10: invalid basic string, expected `\"`"
)]
#[case::unknown_top_key("rto = \"1h\"", "rto = \"1h\"\ncolour = \"red\"", "p.toml:4:1: unknown key `colour`, expected one of `name`, `owner`, `rto`, `rpo`, `backup`, `retention`, `regions`, `resources`, `drill`, `verify`, `aws`, `notify`, `placement`")]
#[case::unknown_nested_key("jitter = \"2m\"", "jitter = \"2m\"\nfrequency = 3", "p.toml:10:1: unknown key `frequency`, expected one of `schedule`, `timezone`, `jitter`, `start_window`, `completion_window`, `primary_region`, `copy_to`, `before`, `after`, `hook_timeout`")]
#[case::missing_key(
    "owner = \"payments@example.com\"\n",
    "",
    "p.toml:1:1: missing key `owner`"
)]
#[case::wrong_type(
    "rto = \"1h\"",
    "rto = 60",
    "p.toml:3:7: invalid type: integer `60`, expected a string"
)]
#[case::bad_name(
    "name = \"orders\"",
    "name = \"Orders_1\"",
    "p.toml:1:8: plan name `Orders_1` must be 1 to 63 characters of a-z, 0-9 and '-'"
)]
#[case::empty_owner(
    "owner = \"payments@example.com\"",
    "owner = \" \"",
    "p.toml:2:9: `owner` must not be empty: reports name who to call"
)]
#[case::bad_duration("rto = \"1h\"", "rto = \"an hour\"", "p.toml:3:7: invalid duration `an hour` for `rto`: expected number at 0; write e.g. \"90s\", \"15m\", \"1h\", \"7d\"")]
#[case::zero_duration(
    "rpo = \"30m\"",
    "rpo = \"0s\"",
    "p.toml:4:7: `rpo` must be longer than zero"
)]
#[case::bad_cron("schedule = \"*/15 * * * *\"", "schedule = \"*/15 * *\"", "p.toml:7:12: cron expression `*/15 * *` has 3 fields; expected 5 (min hour day month weekday), or 6/7 with seconds first (and year last)")]
#[case::bad_cron_value("schedule = \"*/15 * * * *\"", "schedule = \"*/15 25 * * *\"", "p.toml:7:12: invalid cron expression `*/15 25 * * *`: Hours must be less than 23. ('25' specified.)")]
#[case::bad_weekday(
    "schedule = \"0 3 * * SUN\"",
    "schedule = \"0 3 * * 9\"",
    "p.toml:24:12: day of week `9` is out of range 0-7"
)]
#[case::bad_timezone("timezone = \"UTC\"", "timezone = \"Mars/Olympus\"", "p.toml:8:12: unknown time zone `Mars/Olympus`; use an IANA name such as \"UTC\" or \"Europe/Paris\"")]
#[case::read_timeout_zero(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[aws]\nread_timeout = \"0s\"\n",
    "p.toml:33:16: `read_timeout` must be longer than 0s"
)]
#[case::jitter_too_long(
    "jitter = \"2m\"",
    "jitter = \"15m\"",
    "p.toml:9:10: jitter 15m is not shorter than the schedule's interval 15m"
)]
#[case::primary_without_region(
    "primary_region = \"us-east-1\"",
    "primary_region = \"eu-west-1\"",
    "p.toml:10:18: primary region `eu-west-1` has no [regions.eu-west-1] table"
)]
#[case::copy_to_without_region(
    "copy_to = [\"us-west-2\"]",
    "copy_to = [\"us-west-2\", \"ap-south-1\"]",
    "p.toml:11:25: copy_to region `ap-south-1` has no [regions.ap-south-1] table"
)]
#[case::copy_to_primary(
    "copy_to = [\"us-west-2\"]",
    "copy_to = [\"us-west-2\", \"us-east-1\"]",
    "p.toml:11:25: copy_to lists the primary region `us-east-1`; copies go to other regions"
)]
#[case::copy_to_twice(
    "copy_to = [\"us-west-2\"]",
    "copy_to = [\"us-west-2\", \"us-west-2\"]",
    "p.toml:11:25: copy_to lists `us-west-2` twice"
)]
#[case::drill_region_unknown(
    "region = \"us-west-2\"",
    "region = \"eu-central-1\"",
    "p.toml:25:10: drill region `eu-central-1` has no [regions.eu-central-1] table"
)]
#[case::drill_region_primary("region = \"us-west-2\"", "region = \"us-east-1\"", "p.toml:25:10: drill region `us-east-1` is the primary region, but isolate_primary = true; drill from a copy_to region")]
#[case::bad_vault(
    "vault = \"file:///tmp/b\"",
    "vault = \"ftp://host/b\"",
    "p.toml:16:9: vault `ftp://host/b` must be a file://PATH or s3://BUCKET/PREFIX URL"
)]
#[case::duplicate_resource(
    "[drill]",
    "[[resources]]\nname = \"db\"\nkind = \"path\"\npath = \"/srv\"\n\n[drill]",
    "p.toml:24:8: duplicate resource name `db` (first defined on line 19)"
)]
#[case::resources_alike_in_scratch_names(
    "[drill]",
    "[[resources]]\nname = \"d-b\"\nkind = \"path\"\npath = \"/srv\"\n\n[[resources]]\nname = \"d_b\"\nkind = \"path\"\npath = \"/srv\"\n\n[drill]",
    "p.toml:29:8: resource name `d_b` differs from `d-b` (line 24) only by `-` and `_`, which drill scratch names spell alike; rename one"
)]
#[case::unknown_kind("kind = \"sqlite\"", "kind = \"mongodb\"", "p.toml:20:8: unknown resource kind `mongodb`; expected one of path, sqlite, postgres, s3, rds-instance, rds-cluster")]
#[case::key_of_other_kind(
    "path = \"/tmp/app.db\"",
    "path = \"/tmp/app.db\"\nbucket = \"b\"",
    "p.toml:22:10: `bucket` does not apply to a resource of kind `sqlite`"
)]
#[case::missing_kind_key(
    "path = \"/tmp/app.db\"",
    "",
    "p.toml:19:8: resource `db` of kind `sqlite` needs `path`"
)]
#[case::password_in_url("kind = \"sqlite\"\npath = \"/tmp/app.db\"", "kind = \"postgres\"\nurl = \"postgres://app:hunter2@db/app\"", "p.toml:21:7: `url` contains a password; give it through PGPASSWORD or ~/.pgpass instead, never in a plan file")]
#[case::postgres_url_not_a_url(
    "kind = \"sqlite\"\npath = \"/tmp/app.db\"",
    "kind = \"postgres\"\nurl = \"host=db dbname=app\"",
    "p.toml:21:7: `url` must be a postgres:// or postgresql:// URL"
)]
#[case::dump_format_unknown(
    "kind = \"sqlite\"\npath = \"/tmp/app.db\"",
    "kind = \"postgres\"\nurl = \"postgres://app@db/app\"\ndump_format = \"tar\"",
    "p.toml:22:15: `dump_format` must be one of `custom`, `directory`, not `tar`"
)]
#[case::check_unknown_resource(
    "resource = \"db\"\nsql",
    "resource = \"cache\"\nsql",
    "p.toml:29:12: check refers to unknown resource `cache`"
)]
#[case::sql_on_path("kind = \"sqlite\"", "kind = \"path\"", "p.toml:30:7: resource `db` is of kind `path`: SQL checks need a database (sqlite, postgres, rds-instance, rds-cluster); a `command` check can look at any kind")]
#[case::check_sql_and_command(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\ncommand = [\"true\"]\n",
    "p.toml:31:11: give `sql` or `command`, not both"
)]
#[case::check_neither(
    "sql = \"SELECT 1\"\n",
    "name = \"x\"\n",
    "p.toml:28:1: a check needs `sql` (a query on a restored database) or `command` (a program run on the restored data)"
)]
#[case::check_empty_command(
    "sql = \"SELECT 1\"\n",
    "command = []\n",
    "p.toml:30:11: `command` needs a program: [\"PROGRAM\", \"ARG\", …]"
)]
#[case::check_command_with_expect(
    "sql = \"SELECT 1\"\n",
    "command = [\"./smoke.sh\"]\nexpect = 1\n",
    "p.toml:31:10: `expect` is for `sql` checks; a command passes on exit status 0"
)]
#[case::bad_cleanup(
    "isolate_primary = true",
    "isolate_primary = true\ncleanup = \"sometimes\"",
    "p.toml:27:11: `cleanup` must be one of always, on-success, never (got `sometimes`)"
)]
#[case::bad_point(
    "isolate_primary = true",
    "isolate_primary = true\npoint = \"newest\"",
    "p.toml:27:9: `point` must be one of latest, oldest, random (got `newest`)"
)]
#[case::negative_retention(
    "[regions.us-east-1]",
    "[retention]\nkeep_last = -1\n\n[regions.us-east-1]",
    "p.toml:14:13: `keep_last` must be a whole number from 0 to 4294967295"
)]
#[case::bad_exclude("kind = \"sqlite\"\npath = \"/tmp/app.db\"", "kind = \"path\"\npath = \"/srv\"\nexclude = [\"a/**[\"]", "p.toml:22:12: invalid exclude glob `a/**[`: error parsing glob 'a/**[': unclosed character class; missing ']'")]
#[case::too_long(
    "rto = \"1h\"",
    "rto = \"200000000000d\"",
    "p.toml:3:7: duration `200000000000d` for `rto` is too long (at most 100 years)"
)]
#[case::shared_vault("vault = \"file:///tmp/b\"", "vault = \"file:///tmp/x/../a\"", "p.toml:16:9: vault `file:///tmp/x/../a` is also the vault of region `us-east-1`; every region needs its own vault")]
#[case::missing_vault("vault = \"file:///tmp/b\"\n", "", "p.toml:11:12: region `us-west-2` has no vault, but resource `db` (kind sqlite) keeps its points in one")]
#[case::notify_url_and_env(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[[notify]]\nurl = \"https://hooks.example.com/x\"\nurl_env = \"HOOK\"\n",
    "p.toml:34:11: give the webhook's `url` or `url_env`, not both"
)]
#[case::notify_without_url(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[[notify]]\nevents = [\"drill-failed\"]\n",
    "p.toml:32:1: a [[notify]] entry needs `url`, or `url_env`: the name of an environment variable holding the URL"
)]
#[case::notify_bad_scheme(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[[notify]]\nurl = \"ftp://hooks.example.com/s3cr3t\"\n",
    "p.toml:33:7: webhook `url` must be an http:// or https:// URL"
)]
#[case::notify_not_a_url(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[[notify]]\nurl = \"hooks.example.com/s3cr3t\"\n",
    "p.toml:33:7: webhook `url` not a URL (relative URL without a base)"
)]
#[case::notify_unknown_event(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[[notify]]\nurl = \"https://h.example.com/x\"\nevents = [\"drill-failed\", \"backup-succeeded\"]\n",
    "p.toml:34:27: unknown event `backup-succeeded`; expected one of backup-failed, drill-failed, verify-failed, rpo-breach, rpo-recovered, restore-finished"
)]
#[case::notify_no_events(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[[notify]]\nurl = \"https://h.example.com/x\"\nevents = []\n",
    "p.toml:34:10: `events` is empty: list some (or leave it out for all of them)"
)]
#[case::notify_bad_env_name(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[[notify]]\nurl_env = \"1HOOK\"\n",
    "p.toml:33:11: `url_env` must name an environment variable (letters, digits and '_', not starting with a digit), got `1HOOK`"
)]
#[case::notify_unknown_key(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[[notify]]\nurl = \"https://h.example.com/x\"\nchannel = \"#ops\"\n",
    "p.toml:34:1: unknown key `channel`, expected one of `url`, `url_env`, `events`"
)]
#[case::verify_without_schedule(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[verify]\nread_data = true\n",
    "p.toml:32:1: missing key `schedule`"
)]
#[case::verify_bad_cron(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[verify]\nschedule = \"0 25 * * *\"\n",
    "p.toml:33:12: invalid cron expression `0 25 * * *`: Hours must be less than 23. ('25' specified.)"
)]
#[case::verify_bad_timezone(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[verify]\nschedule = \"0 5 * * *\"\ntimezone = \"Moon/Base\"\n",
    "p.toml:34:12: unknown time zone `Moon/Base`; use an IANA name such as \"UTC\" or \"Europe/Paris\""
)]
#[case::verify_jitter_too_long(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[verify]\nschedule = \"*/15 * * * *\"\njitter = \"20m\"\n",
    "p.toml:34:10: jitter 20m is not shorter than the schedule's interval 15m"
)]
#[case::verify_read_data_twice(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[verify]\nschedule = \"0 5 * * *\"\nread_data = true\nread_data_subset = \"1/10\"\n",
    "p.toml:35:20: give `read_data = true` (every byte at every run) or `read_data_subset` (a part at each run), not both"
)]
#[case::verify_subset_not_first_part(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[verify]\nschedule = \"0 5 * * *\"\nread_data_subset = \"3/10\"\n",
    "p.toml:34:20: `read_data_subset` is the share each run reads, written 1/M: the daemon moves to the next part at each run by itself; write \"1/10\" (got `3/10`)"
)]
#[case::verify_subset_not_a_fraction(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[verify]\nschedule = \"0 5 * * *\"\nread_data_subset = \"1/0\"\n",
    "p.toml:34:20: `read_data_subset` must be 1/M with M a whole number from 1, e.g. \"1/10\": each run reads the next tenth of the points (got `1/0`)"
)]
#[case::verify_read_data_not_a_bool(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[verify]\nschedule = \"0 5 * * *\"\nread_data = \"yes\"\n",
    "p.toml:34:13: invalid type: string \"yes\", expected a boolean"
)]
#[case::verify_unknown_key(
    "sql = \"SELECT 1\"\n",
    "sql = \"SELECT 1\"\n\n[verify]\nschedule = \"0 5 * * *\"\nregion = \"us-west-2\"\n",
    "p.toml:34:1: unknown key `region`, expected one of `schedule`, `timezone`, `jitter`, `read_data`, `read_data_subset`"
)]
#[case::object_lock_on_a_file_vault(
    "vault = \"file:///tmp/b\"",
    "vault = \"file:///tmp/b\"\nobject_lock = { mode = \"governance\", retain = \"30d\" }",
    "p.toml:17:15: `object_lock` is S3 Object Lock and needs an s3:// vault; region `us-west-2` keeps its points in `file:///tmp/b`"
)]
#[case::kms_key_on_a_file_vault(
    "vault = \"file:///tmp/b\"",
    "vault = \"file:///tmp/b\"\nkms_key = \"alias/backups\"",
    "p.toml:17:11: `kms_key` encrypts objects in S3 (SSE-KMS); region `us-west-2`'s vault is a file:// folder, which it cannot encrypt: remove `kms_key`, or use an s3:// vault"
)]
#[case::object_lock_unknown_mode(
    "vault = \"file:///tmp/b\"",
    "vault = \"s3://b/x\"\nobject_lock = { mode = \"legal-hold\", retain = \"30d\" }",
    "p.toml:17:24: `mode` must be governance or compliance (got `legal-hold`)"
)]
#[case::object_lock_zero_retain(
    "vault = \"file:///tmp/b\"",
    "vault = \"s3://b/x\"\nobject_lock = { mode = \"compliance\", retain = \"0s\" }",
    "p.toml:17:47: `retain` must be longer than zero"
)]
#[case::object_lock_bad_retain(
    "vault = \"file:///tmp/b\"",
    "vault = \"s3://b/x\"\nobject_lock = { mode = \"compliance\", retain = \"a month\" }",
    "p.toml:17:47: invalid duration `a month` for `retain`: expected number at 0; write e.g. \"90s\", \"15m\", \"1h\", \"7d\""
)]
#[case::object_lock_without_mode(
    "vault = \"file:///tmp/b\"",
    "vault = \"s3://b/x\"\nobject_lock = { retain = \"30d\" }",
    "p.toml:17:15: `object_lock` needs `mode`: \"governance\" (users allowed s3:BypassGovernanceRetention can still remove a lock) or \"compliance\" (nobody can before it expires, not even the account's root user)"
)]
#[case::object_lock_without_retain(
    "vault = \"file:///tmp/b\"",
    "vault = \"s3://b/x\"\nobject_lock = { mode = \"governance\" }",
    "p.toml:17:15: `object_lock` needs `retain`: how long each object stays locked once written, e.g. \"30d\""
)]
#[case::object_lock_unknown_key(
    "vault = \"file:///tmp/b\"",
    "vault = \"s3://b/x\"\nobject_lock = { mode = \"governance\", retain = \"1d\", legal_hold = true }",
    "p.toml:17:53: unknown key `legal_hold`, expected `mode` or `retain`"
)]
#[case::object_lock_without_vault(
    "vault = \"file:///tmp/b\"\n",
    "object_lock = { mode = \"governance\", retain = \"30d\" }\n",
    "p.toml:16:15: region `us-west-2` has no vault: `object_lock` locks the objects of an s3:// vault"
)]
#[case::encryption_with_both_keys(
    "vault = \"file:///tmp/b\"",
    "vault = \"file:///tmp/b\"\nencryption = { key_file = \"k\", key_env = \"K\" }",
    "p.toml:17:14: `encryption` takes one of `key_file` and `key_env`, not both"
)]
#[case::encryption_without_a_key(
    "vault = \"file:///tmp/b\"",
    "vault = \"file:///tmp/b\"\nencryption = {}",
    "p.toml:17:14: `encryption` needs `key_file = \"FILE\"` (an age identity file, as `lifeboat key generate -o FILE` writes it) or `key_env = \"NAME\"` (an environment variable holding the key)"
)]
#[case::encryption_bad_env_name(
    "vault = \"file:///tmp/b\"",
    "vault = \"file:///tmp/b\"\nencryption = { key_env = \"1-KEY\" }",
    "p.toml:17:26: `key_env` must name an environment variable (letters, digits and '_', not starting with a digit), got `1-KEY`"
)]
#[case::encryption_unknown_key(
    "vault = \"file:///tmp/b\"",
    "vault = \"file:///tmp/b\"\nencryption = { passphrase = \"x\" }",
    "p.toml:17:16: unknown key `passphrase`, expected `key_file` or `key_env`"
)]
#[case::encryption_without_vault(
    "vault = \"file:///tmp/b\"\n",
    "encryption = { key_env = \"K\" }\n",
    "p.toml:16:14: region `us-west-2` has no vault: `encryption` encrypts the objects of its vault (RDS snapshots are encrypted with `kms_key`)"
)]
#[case::placement_bad_label(
    "rto = \"1h\"",
    "rto = \"1h\"\nplacement = { labels = [\"host-a\", \"Host B\"] }",
    "p.toml:4:35: label `Host B` must be 1 to 63 characters of a-z, 0-9, '-', '_' and '.' (as given to `daemon --labels`)"
)]
#[case::placement_unknown_key(
    "rto = \"1h\"",
    "rto = \"1h\"\nplacement = { hosts = [\"a\"] }",
    "p.toml:4:15: unknown key `hosts`, expected `labels`"
)]
fn each_rule_reports_its_message_and_position(
    #[case] find: &str,
    #[case] replace: &str,
    #[case] expected: &str,
) {
    assert!(BASE.contains(find), "case does not apply: {find}");
    let text = BASE.replacen(find, replace, 1);
    let got = diagnostics(&text);
    assert!(
        got.iter().any(|d| d == expected),
        "expected\n  {expected}\ngot\n  {}",
        got.join("\n  ")
    );
}

/// The resource of [`BASE`], replaced by each case.
const BASE_RESOURCE: &str = "kind = \"sqlite\"\npath = \"/tmp/app.db\"";

#[rstest]
#[case::path_needs_path(
    "kind = \"path\"",
    "p.toml:19:8: resource `db` of kind `path` needs `path`"
)]
#[case::postgres_needs_url(
    "kind = \"postgres\"\ndrill_url = \"postgres://db/drill\"",
    "p.toml:19:8: resource `db` of kind `postgres` needs `url`"
)]
#[case::s3_needs_bucket(
    "kind = \"s3\"\nprefix = \"p/\"",
    "p.toml:19:8: resource `db` of kind `s3` needs `bucket`"
)]
#[case::rds_instance_needs_instance(
    "kind = \"rds-instance\"\ninstance_class = \"db.t3.micro\"",
    "p.toml:19:8: resource `db` of kind `rds-instance` needs `instance`"
)]
#[case::rds_cluster_needs_cluster(
    "kind = \"rds-cluster\"\nsecurity_groups = [\"sg-1\"]",
    "p.toml:19:8: resource `db` of kind `rds-cluster` needs `cluster`"
)]
#[case::path_takes_no_url(
    "kind = \"path\"\npath = \"/srv\"\nurl = \"postgres://db/app\"",
    "p.toml:22:7: `url` does not apply to a resource of kind `path`"
)]
#[case::sqlite_takes_no_exclude(
    "kind = \"sqlite\"\npath = \"/tmp/app.db\"\nexclude = [\"*.tmp\"]",
    "p.toml:22:11: `exclude` does not apply to a resource of kind `sqlite`"
)]
#[case::postgres_takes_no_path(
    "kind = \"postgres\"\nurl = \"postgres://db/app\"\npath = \"/srv\"",
    "p.toml:22:8: `path` does not apply to a resource of kind `postgres`"
)]
#[case::s3_takes_no_instance_class(
    "kind = \"s3\"\nbucket = \"b\"\ninstance_class = \"db.t3.micro\"",
    "p.toml:22:18: `instance_class` does not apply to a resource of kind `s3`"
)]
#[case::rds_instance_takes_no_cluster(
    "kind = \"rds-instance\"\ninstance = \"db-1\"\ncluster = \"c\"",
    "p.toml:22:11: `cluster` does not apply to a resource of kind `rds-instance`"
)]
#[case::rds_cluster_takes_no_instance(
    "kind = \"rds-cluster\"\ncluster = \"c\"\ninstance = \"db-1\"",
    "p.toml:22:12: `instance` does not apply to a resource of kind `rds-cluster`"
)]
#[case::blank_bucket(
    "kind = \"s3\"\nbucket = \" \"",
    "p.toml:21:10: `bucket` must not be empty"
)]
#[case::blank_instance(
    "kind = \"rds-instance\"\ninstance = \"\"",
    "p.toml:21:12: `instance` must not be empty"
)]
#[case::password_in_drill_url("kind = \"postgres\"\nurl = \"postgres://db/app\"\ndrill_url = \"postgres://u:pw@db/app\"", "p.toml:22:13: `drill_url` contains a password; give it through PGPASSWORD or ~/.pgpass instead, never in a plan file")]
#[case::text_of_wrong_type(
    "kind = \"sqlite\"\npath = 3",
    "p.toml:21:8: invalid type: integer `3`, expected a string"
)]
#[case::list_of_wrong_type(
    "kind = \"path\"\npath = \"/srv\"\nexclude = \"*.tmp\"",
    "p.toml:22:11: invalid type: string \"*.tmp\", expected a sequence"
)]
#[case::list_item_of_wrong_type(
    "kind = \"rds-instance\"\ninstance = \"db-1\"\nsecurity_groups = [\"sg-1\", 2]",
    "p.toml:22:28: invalid type: integer `2`, expected a string"
)]
#[case::without_kind("path = \"/tmp/app.db\"", "p.toml:18:1: missing key `kind`")]
fn each_kind_reports_its_keys(#[case] resource: &str, #[case] expected: &str) {
    let got = diagnostics(&BASE.replacen(BASE_RESOURCE, resource, 1));
    assert!(
        got.iter().any(|d| d == expected),
        "expected\n  {expected}\ngot\n  {}",
        got.join("\n  ")
    );
}

#[test]
fn an_unknown_resource_key_lists_every_key_a_resource_may_have() {
    let text = BASE.replacen(
        BASE_RESOURCE,
        "kind = \"sqlite\"\npath = \"/tmp/app.db\"\ncolour = \"red\"\nshade = 1",
        1,
    );
    let got = diagnostics(&text);
    let keys = "`name`, `kind`, `path`, `exclude`, `url`, `drill_url`, `dump_format`, `bucket`, `prefix`, `instance`, `instance_class`, `subnet_group`, `security_groups`, `cluster`";
    for (line, key) in [(22, "colour"), (23, "shade")] {
        let expected = format!("p.toml:{line}:1: unknown key `{key}`, expected one of {keys}");
        assert!(got.contains(&expected), "{expected}\n{got:#?}");
    }
}

#[test]
fn every_kind_reads_its_keys_into_its_spec() {
    use lifeboat::plan::{DumpFormat, RdsRestore, ResourceSpec};
    let resources = r#"kind = "path"
path = "srv"
exclude = ["*.tmp", "cache/**"]

[[resources]]
name = "pg"
kind = "postgres"
url = "postgres://app@db/app"
drill_url = "postgresql://drill@db/postgres"

[[resources]]
name = "files"
kind = "s3"
bucket = "assets"

[[resources]]
name = "rds"
kind = "rds-instance"
instance = "orders-1"
security_groups = ["sg-1", "sg-2"]

[[resources]]
name = "aurora"
kind = "rds-cluster"
cluster = "orders"
instance_class = "db.r6g.large"
subnet_group = "private""#;
    let text = BASE
        .replacen(BASE_RESOURCE, resources, 1)
        .replace("file:///tmp/a", "s3://a/x")
        .replace("file:///tmp/b", "s3://b/x")
        .replace("resource = \"db\"", "resource = \"pg\"");
    let (plan, _) = lifeboat::plan::parse_plan(Path::new("/plans/p.toml"), &text).expect("valid");
    let specs: Vec<&ResourceSpec> = plan.resources.iter().map(|r| &r.spec).collect();
    assert!(
        matches!(specs[0], ResourceSpec::Path { path, exclude }
            if path == Path::new("/plans/srv") && exclude == &["*.tmp", "cache/**"]),
        "{:?}",
        specs[0]
    );
    assert!(
        matches!(specs[1], ResourceSpec::Postgres { url, drill_url: Some(drill), dump_format }
            if url == "postgres://app@db/app" && drill == "postgresql://drill@db/postgres"
                && *dump_format == DumpFormat::Custom),
        "{:?}",
        specs[1]
    );
    assert!(
        matches!(specs[2], ResourceSpec::S3 { bucket, prefix } if bucket == "assets" && prefix.is_empty()),
        "{:?}",
        specs[2]
    );
    let ResourceSpec::RdsInstance { instance, restore } = specs[3] else {
        panic!("{:?}", specs[3])
    };
    assert_eq!(instance, "orders-1");
    assert_eq!(
        restore,
        &RdsRestore {
            security_groups: vec!["sg-1".into(), "sg-2".into()],
            ..RdsRestore::default()
        }
    );
    let ResourceSpec::RdsCluster { cluster, restore } = specs[4] else {
        panic!("{:?}", specs[4])
    };
    assert_eq!(cluster, "orders");
    assert_eq!(
        restore,
        &RdsRestore {
            instance_class: Some("db.r6g.large".into()),
            subnet_group: Some("private".into()),
            security_groups: Vec::new(),
        }
    );
}

#[test]
fn placement_labels_are_read_without_repeats() {
    let text = BASE.replacen(
        "rto = \"1h\"",
        "rto = \"1h\"\nplacement = { labels = [\"host-a\", \"zone.eu-1\", \"host-a\"] }",
        1,
    );
    let (plan, _) = lifeboat::plan::parse_plan(Path::new("p.toml"), &text).expect("valid");
    assert_eq!(plan.placement, ["host-a", "zone.eu-1"]);
    let (plan, _) = lifeboat::plan::parse_plan(Path::new("p.toml"), BASE).expect("valid");
    assert!(plan.placement.is_empty());
}

#[test]
fn a_plan_without_resources_is_refused() {
    let text = BASE
        .replace(
            "[[resources]]\nname = \"db\"\nkind = \"sqlite\"\npath = \"/tmp/app.db\"\n",
            "",
        )
        .replace("rpo = \"30m\"", "rpo = \"30m\"\nresources = []");
    let got = diagnostics(&text);
    assert!(
        got.iter()
            .any(|d| d == "p.toml:5:13: the plan protects no resource: add a [[resources]] table"),
        "{got:?}"
    );
}

#[test]
fn every_error_of_a_file_is_reported() {
    let text = BASE
        .replace(
            "name = \"orders\"",
            "name = \"Orders\"\ncolour = 1\nshade = 2",
        )
        .replace("rto = \"1h\"", "rto = \"soon\"")
        .replace("timezone = \"UTC\"", "timezone = \"Nowhere\"");
    let got = diagnostics(&text);
    // Two unknown keys (reported together), then the semantic errors.
    assert!(
        got.iter().any(|d| d.contains("unknown key `colour`")),
        "{got:?}"
    );
    assert!(
        got.iter().any(|d| d.contains("unknown key `shade`")),
        "{got:?}"
    );
    let text = BASE
        .replace("name = \"orders\"", "name = \"Orders\"")
        .replace("rto = \"1h\"", "rto = \"soon\"")
        .replace("timezone = \"UTC\"", "timezone = \"Nowhere\"");
    let got = diagnostics(&text);
    assert_eq!(got.len(), 3, "{got:?}");
}

#[rstest]
#[case::jitter_eats_rpo("rpo = \"30m\"", "rpo = \"15m\"", "p.toml:4:7: warning: rpo 15m cannot be met by construction: the schedule leaves up to 17m between backups (longest interval 15m + jitter up to 2m), before counting the time a backup takes")]
#[case::no_drill_schedule(
    "schedule = \"0 3 * * SUN\"\n",
    "",
    "p.toml:23:1: warning: [drill] has no schedule: drills run only when started by hand"
)]
#[case::object_lock_outlasts_max_age(
    "[regions.us-east-1]\nvault = \"file:///tmp/a\"",
    "[retention]\nmax_age = \"7d\"\n\n[regions.us-east-1]\nvault = \"s3://a/x\"\nobject_lock = { mode = \"compliance\", retain = \"30d\" }",
    "p.toml:18:15: warning: points in region `us-east-1` stay locked for 30days, longer than max_age 7days: prune keeps each point until its lock expires, then deletes it"
)]
fn warnings_do_not_reject_the_plan(
    #[case] find: &str,
    #[case] replace: &str,
    #[case] expected: &str,
) {
    let text = BASE.replacen(find, replace, 1);
    let (_, warnings) =
        lifeboat::plan::parse_plan(Path::new("p.toml"), &text).expect("still valid");
    let got: Vec<String> = warnings.iter().map(|d| d.to_string()).collect();
    assert!(
        got.iter().any(|d| d == expected),
        "expected {expected}\ngot {got:?}"
    );
}

#[test]
fn encryption_is_read_into_the_region_and_refused_for_s3_resources() {
    let text = BASE
        .replace(
            "vault = \"file:///tmp/a\"",
            "vault = \"file:///tmp/a\"\nencryption = { key_file = \"keys/a.key\" }",
        )
        .replace(
            "vault = \"file:///tmp/b\"",
            "vault = \"file:///tmp/b\"\nencryption = { key_env = \"DR_KEY\" }",
        );
    let (plan, warnings) =
        lifeboat::plan::parse_plan(Path::new("/plans/p.toml"), &text).expect("valid");
    assert!(warnings.is_empty(), "{warnings:?}");
    use lifeboat::plan::KeySource;
    assert_eq!(
        plan.regions["us-east-1"].encryption,
        Some(KeySource::File("/plans/keys/a.key".into())),
        "relative to the plan's folder"
    );
    assert_eq!(
        plan.regions["us-west-2"].encryption,
        Some(KeySource::Env("DR_KEY".into()))
    );

    // Objects copied inside S3 would land unencrypted: refused.
    let s3 = text
        .replace("file:///tmp/a", "s3://a/x")
        .replace("file:///tmp/b", "s3://b/x")
        .replace(BASE_RESOURCE, "kind = \"s3\"\nbucket = \"data\"");
    let got = diagnostics(&s3);
    assert!(
        got.iter().any(|d| d.contains(
            "region `us-west-2` has `encryption`, but resource `db` is of kind s3, whose objects are copied inside S3"
        )),
        "{got:?}"
    );
}

#[test]
fn an_object_lock_is_read_into_the_region() {
    let text = BASE
        .replace(
            "vault = \"file:///tmp/a\"",
            "vault = \"s3://a/x\"\nobject_lock = { mode = \"governance\", retain = \"30d\" }",
        )
        .replace(
            "vault = \"file:///tmp/b\"",
            "vault = \"s3://b/x\"\nobject_lock = { mode = \"compliance\", retain = \"2s\" }",
        );
    let (plan, warnings) = lifeboat::plan::parse_plan(Path::new("p.toml"), &text).expect("valid");
    assert!(warnings.is_empty(), "{warnings:?}");
    let lock = |r: &str| plan.regions[r].object_lock.expect("a lock");
    assert_eq!(lock("us-east-1").mode, lifeboat::plan::LockMode::Governance);
    assert_eq!(lock("us-east-1").retain, Duration::from_secs(30 * 86_400));
    assert_eq!(lock("us-west-2").mode, lifeboat::plan::LockMode::Compliance);
    assert_eq!(lock("us-west-2").retain, Duration::from_secs(2));
    assert!(lifeboat::plan::parse_plan(Path::new("p.toml"), BASE)
        .unwrap()
        .0
        .regions["us-east-1"]
        .object_lock
        .is_none());
}

#[test]
fn plan_validate_prints_positions_and_exits_2() {
    let env = Env::new();
    let good = env.write_plan("good.toml", BASE);
    let bad = env.write_plan(
        "bad.toml",
        &BASE.replace("rto = \"1h\"", "rto = \"1 fortnight\""),
    );
    let out = env.run(&["plan", "validate"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}:3:7: invalid duration `1 fortnight` for `rto`",
            bad.display()
        )),
        "{err}"
    );
    assert!(stdout(&out).contains(&format!("ok {}", good.display())));
    let out = env.run(&["plan", "validate", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn two_plans_with_one_name_are_refused() {
    let env = Env::new();
    env.write_plan("a.toml", BASE);
    env.write_plan("b.toml", BASE);
    let out = env.run(&["plan", "validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("b.toml:1:1: plan name `orders` is already used by"),
        "{}",
        stderr(&out)
    );
}

fn assert_rejected_quickly(env: &Env, file: &str, bytes: &[u8]) -> String {
    let path = env.plans().join(file);
    std::fs::write(&path, bytes).unwrap();
    let start = Instant::now();
    let out = env.run(&["plan", "validate", path.to_str().unwrap()]);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{file} took {:?}",
        start.elapsed()
    );
    assert_eq!(out.status.code(), Some(2), "{file}: {}", stderr(&out));
    let err = stderr(&out);
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
    let first = err.lines().next().unwrap_or("").to_string();
    assert!(
        first.starts_with(&format!("{}:", path.display())),
        "{file}: {err}"
    );
    std::fs::remove_file(&path).unwrap();
    first
}

#[test]
fn hostile_files_give_errors_not_panics() {
    let env = Env::new();
    let first = assert_rejected_quickly(&env, "empty.toml", b"");
    assert!(first.ends_with(":1:1: file is empty; a plan needs name, owner, rto, rpo, [backup], [regions.*] and [[resources]]"), "{first}");
    let first = assert_rejected_quickly(&env, "binary.toml", &pseudo_random(4096, 3));
    assert!(
        first.contains("not UTF-8") || first.contains(": "),
        "{first}"
    );
    let first = assert_rejected_quickly(&env, "nul.toml", b"name = \"a\0b\"\n");
    assert!(first.contains(":1:"), "{first}");
    let huge = "# padding\n".repeat(200_000);
    let first = assert_rejected_quickly(&env, "huge.toml", huge.as_bytes());
    assert!(first.contains("a plan file may be at most"), "{first}");
    let nested = format!("a = {}1{}", "[".repeat(50_000), "]".repeat(50_000));
    assert_rejected_quickly(&env, "nested.toml", nested.as_bytes());
    let tables = format!("a = {}{}", "{b = ".repeat(20_000), "}".repeat(20_000));
    assert_rejected_quickly(&env, "tables.toml", tables.as_bytes());
    let long_key = format!("{} = 1\n", "k".repeat(500_000));
    assert_rejected_quickly(&env, "long.toml", long_key.as_bytes());
    let huge_duration = BASE.replace("rto = \"1h\"", "rto = \"99999999999999999999d\"");
    assert_rejected_quickly(&env, "dur.toml", huge_duration.as_bytes());
    let huge_duration = BASE.replace("jitter = \"2m\"", "jitter = \"500000000y\"");
    assert_rejected_quickly(&env, "jitter.toml", huge_duration.as_bytes());
}

#[test]
fn the_shipped_plans_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    for dir in [root.clone(), root.join("examples")] {
        let loaded = lifeboat::plan::load_dir(&dir).unwrap();
        let problems: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!loaded.plans.is_empty());
    }
}

#[test]
fn verify_schedules_the_daemon_s_verify_runs_and_how_deep_they_read() {
    use lifeboat::plan::VerifyDepth;
    let parse = |verify: &str| {
        let text = format!("{BASE}\n[verify]\n{verify}\n");
        let (plan, warnings) =
            lifeboat::plan::parse_plan(Path::new("p.toml"), &text).expect("valid");
        assert!(warnings.is_empty(), "{warnings:?}");
        plan.verify.expect("a [verify] schedule")
    };
    let v = parse("schedule = \"30 4 * * *\"");
    assert_eq!(v.depth, VerifyDepth::Presence);
    assert_eq!(v.timing.cron.source(), "30 4 * * *");
    assert_eq!(v.timing.jitter, Duration::ZERO);
    assert_eq!(v.timing.timezone, chrono_tz::UTC);
    let v = parse("schedule = \"30 4 * * *\"\ntimezone = \"Europe/Paris\"\njitter = \"20m\"\nread_data = true");
    assert_eq!(v.depth, VerifyDepth::ReadData);
    assert_eq!(v.timing.timezone, chrono_tz::Europe::Paris);
    assert_eq!(v.timing.jitter, Duration::from_secs(1200));
    let v = parse("schedule = \"30 4 * * *\"\nread_data = false\nread_data_subset = \"1/10\"");
    assert_eq!(v.depth, VerifyDepth::ReadDataSubset { parts: 10 });
    // Without the table, only `lifeboat verify` by hand.
    let (plan, _) = lifeboat::plan::parse_plan(Path::new("p.toml"), BASE).unwrap();
    assert!(plan.verify.is_none());
}

#[test]
fn plan_show_lists_the_next_verify_runs() {
    let env = Env::new();
    let text = format!("{BASE}\n[verify]\nschedule = \"30 4 * * *\"\nread_data_subset = \"1/7\"\n");
    env.write_plan("orders.toml", &text);
    let (v, code) = env.json(&["plan", "show", "orders", "--next", "3", "--json"]);
    assert_eq!(code, 0, "{v}");
    let runs = v["verify"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{v}");
    assert!(
        runs.iter()
            .all(|r| r.as_str().unwrap().ends_with("T04:30:00Z")),
        "{v}"
    );
    let out = stdout(&env.run(&["plan", "show", "orders"]));
    assert!(
        out.contains("next verifies, every region, a 1/7 part read in full, the next at each run (\"30 4 * * *\" in UTC"),
        "{out}"
    );
    let (all, _) = env.json(&["plan", "show", "--all", "--next", "1", "--json"]);
    let kinds: Vec<&str> = all["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"verify"), "{all}");
    // Without [verify], the plan says how to verify by hand.
    env.write_plan("orders.toml", BASE);
    let out = stdout(&env.run(&["plan", "show", "orders"]));
    assert!(
        out.contains(
            "no verify schedule: points are verified only by hand (lifeboat verify orders)"
        ),
        "{out}"
    );
}

#[test]
fn plan_show_all_flags_collisions_on_one_region() {
    let env = Env::new();
    // Two plans, same cron, same primary region label, no jitter: they collide.
    let a = BASE.replace("jitter = \"2m\"\n", "");
    let b = a.replace("name = \"orders\"", "name = \"billing\"");
    env.write_plan("a.toml", &a);
    env.write_plan("b.toml", &b);
    let (v, code) = env.json(&["plan", "show", "--all", "--next", "2", "--json"]);
    assert_eq!(code, 0);
    assert!(v["collisions"].as_u64().unwrap() >= 2, "{v}");
    let first = &v["runs"][0];
    assert_eq!(first["kind"], "backup");
    assert_eq!(first["collides_with"][0]["kind"], "backup");
    let out = env.run(&["plan", "show", "--all"]);
    assert!(stdout(&out).contains("COLLIDES with"), "{}", stdout(&out));
    // With jitter the backups spread out.
    env.write_plan("a.toml", BASE);
    env.write_plan(
        "b.toml",
        &BASE
            .replace("name = \"orders\"", "name = \"billing\"")
            .replace("*/15 * * * *", "7-59/15 * * * *"),
    );
    let (v, _) = env.json(&[
        "plan",
        "show",
        "--all",
        "--next",
        "3",
        "--json",
        "--collision-window",
        "30s",
    ]);
    let backups_colliding = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "backup" && !r["collides_with"].as_array().unwrap().is_empty())
        .count();
    assert_eq!(backups_colliding, 0, "{v}");
}

#[test]
fn notify_webhooks_take_every_event_unless_narrowed_and_never_echo_their_url() {
    use lifeboat::plan::{NotifyEvent, WebhookTarget};
    let text = format!(
        "{BASE}\n[[notify]]\nurl = \"https://hooks.example.com/services/s3cr3t\"\n\n[[notify]]\nurl_env = \"LIFEBOAT_TEST_UNSET_HOOK\"\nevents = [\"rpo-breach\", \"rpo-recovered\", \"rpo-breach\"]\n"
    );
    let (plan, warnings) = lifeboat::plan::parse_plan(Path::new("p.toml"), &text).expect("valid");
    assert_eq!(plan.notify.len(), 2);
    assert_eq!(plan.notify[0].events, NotifyEvent::ALL.to_vec());
    assert_eq!(
        plan.notify[1].events,
        vec![NotifyEvent::RpoBreach, NotifyEvent::RpoRecovered]
    );
    assert_eq!(
        plan.notify[1].target,
        WebhookTarget::Env("LIFEBOAT_TEST_UNSET_HOOK".into())
    );
    // The unset variable is a warning, not an error.
    let w: Vec<String> = warnings.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        w,
        vec!["p.toml:36:11: warning: environment variable LIFEBOAT_TEST_UNSET_HOOK is not set here: this webhook gets nothing where it is unset"]
    );
    // The plan's debug form (logged on some errors) hides the token.
    assert!(!format!("{plan:?}").contains("s3cr3t"));
}

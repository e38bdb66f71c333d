//! How a command names a plan: `PLAN`, or `--plan PLAN` (the spelling the
//! listing commands had first, kept so scripts go on working). Every
//! command that names one plan flattens one of these two.

use clap::Args;

/// Exactly one plan: `lifeboat backup run PLAN` (or `--plan PLAN`).
#[derive(Debug, Clone, Args)]
pub struct OnePlan {
    /// The plan, by the `name` its file gives.
    #[arg(value_name = "PLAN", required_unless_present = "plan_option")]
    plan: Option<String>,
    /// The plan, as an option (the same as PLAN).
    #[arg(
        long = "plan",
        id = "plan_option",
        value_name = "PLAN",
        conflicts_with = "plan"
    )]
    plan_option: Option<String>,
}

impl OnePlan {
    /// The plan's name. clap requires one of the two spellings; were
    /// neither given, the empty name is reported as an unknown plan.
    pub fn name(&self) -> &str {
        self.plan
            .as_deref()
            .or(self.plan_option.as_deref())
            .unwrap_or_default()
    }
}

/// One plan or every plan: `lifeboat points list [PLAN]` (or `--plan PLAN`).
#[derive(Debug, Clone, Args)]
pub struct PlanFilter {
    /// Only this plan, by the `name` its file gives [default: every plan].
    #[arg(value_name = "PLAN")]
    plan: Option<String>,
    /// Only this plan, as an option (the same as PLAN).
    #[arg(
        long = "plan",
        id = "plan_option",
        value_name = "PLAN",
        conflicts_with = "plan"
    )]
    plan_option: Option<String>,
}

impl PlanFilter {
    /// The plan named, if one was.
    pub fn name(&self) -> Option<&str> {
        self.plan.as_deref().or(self.plan_option.as_deref())
    }
}

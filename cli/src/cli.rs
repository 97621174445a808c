//! The command-line grammar of `map` (clap derive): every subcommand, its
//! arguments and help text. Nothing here does any work; `commands` does.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A local-first Mutual Action Plan: one shared plan between seller and
/// buyer, kept on your machine and synced through a relay you control.
#[derive(Debug, Parser)]
#[command(name = "map", version, about, max_term_width = 100)]
pub struct Cli {
    /// Plan to work on (title, id prefix or `automerge:` URL); defaults to
    /// the current plan (see `map use`).
    #[arg(long, global = true, value_name = "PLAN")]
    pub plan: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Every `map` subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show who you are (the author recorded on your changes).
    Whoami,
    /// Set who you are.
    #[command(subcommand)]
    Identity(IdentityCmd),
    /// Create a plan and make it the current one.
    Init(InitArgs),
    /// List plans.
    Plans(JsonFlag),
    /// Make PLAN the current plan.
    Use {
        /// Title, id prefix or `automerge:` URL.
        plan: String,
    },
    /// Show the plan: header, milestones, tasks, risks, people, warnings.
    Show(JsonFlag),
    /// Add, edit, finish and list tasks.
    #[command(subcommand)]
    Task(TaskCmd),
    /// Add, edit, reorder and list milestones.
    #[command(subcommand)]
    Milestone(MilestoneCmd),
    /// Add, edit and list people (stakeholders).
    #[command(subcommand)]
    Person(PersonCmd),
    /// Add, edit and list risks.
    #[command(subcommand)]
    Risk(RiskCmd),
    /// Add or remove task dependencies.
    #[command(subcommand)]
    Dep(DepCmd),
    /// Comment on a task, milestone or risk.
    Comment {
        /// Id (prefix) or title of the task, milestone or risk.
        id: String,
        /// The comment.
        text: String,
    },
    /// Show the change history, newest first.
    Log(LogArgs),
    /// Show fields that concurrent edits left with several values.
    Conflicts(JsonFlag),
    /// Show the critical path: the chain of tasks that sets the finish date.
    Path(JsonFlag),
    /// Preview what moves if a task slips: `map whatif TASK +5d` (nothing is saved).
    Whatif(WhatIfArgs),
    /// What each person should do next, most urgent first, with the score.
    Next(NextArgs),
    /// Open tasks past their due date.
    Overdue(JsonFlag),
    /// Open tasks that are blocked or wait on unfinished dependencies.
    Blocked(JsonFlag),
    /// Open tasks of one side that the other side is waiting on.
    Waiting(WaitingArgs),
    /// Open tasks nobody has touched for a while.
    Stale(StaleArgs),
    /// Check the plan for gaps and impossible dates, with fixes.
    Check(CheckArgs),
    /// Record or list baselines (agreed versions of the plan).
    #[command(subcommand)]
    Baseline(BaselineCmd),
    /// Show what slipped, was added or dropped since a baseline, and by whom.
    Diff {
        /// Baseline name.
        name: String,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Draw the plan as a timeline (Gantt chart) in the terminal.
    Timeline(TimelineArgs),
    /// Export the plan as Markdown, HTML, CSV, XLSX, iCalendar or JSON.
    Export(ExportArgs),
    /// Import tasks from a CSV spreadsheet into the plan (or a new one).
    Import(ImportArgs),
    /// Manage relays to sync with.
    #[command(subcommand)]
    Remote(RemoteCmd),
    /// Sync plans with a relay.
    Sync(SyncArgs),
    /// Create an invite link to a plan.
    Share(ShareArgs),
    /// Join a plan from an invite link.
    Join {
        /// The invite (`ws://HOST:PORT/join/SECRET`).
        invite: String,
        /// For a wss:// relay with its own CA: PEM file of the CA
        /// certificate to trust (stored with the remote). Default:
        /// $MAP_CA_FILE.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<std::path::PathBuf>,
    },
    /// Run a local relay with a sample plan, to try map out.
    Demo,
    /// Check the local database and say what is wrong (exit 1 if anything).
    Doctor(DoctorArgs),
}

/// `map doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
    /// Rebuild cached views and history from the plans' documents.
    #[arg(long, conflicts_with = "restore")]
    pub fix: bool,
    /// Move a damaged database aside (it is kept), start a fresh one with
    /// what can still be read from it, and fetch every plan your relays hold.
    #[arg(long)]
    pub restore: bool,
    /// With `--restore`: fetch from this remote only.
    #[arg(long, requires = "restore")]
    pub remote: Option<String>,
}

/// `--json` alone.
#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// `map identity ...`.
#[derive(Debug, Subcommand)]
pub enum IdentityCmd {
    /// Set your name, email and side.
    Set {
        /// Your name.
        #[arg(long)]
        name: Option<String>,
        /// Your email.
        #[arg(long)]
        email: Option<String>,
        /// Your side of the deal.
        #[arg(long, value_enum)]
        side: Option<SideArg>,
    },
}

/// A side of the deal.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SideArg {
    /// The selling company.
    Seller,
    /// The buying company.
    Buyer,
    /// Anyone else (partner, consultant).
    Other,
}

/// A built-in template.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TemplateArg {
    /// Action items with owners, deadlines and dependencies (15 days to signature).
    Basic,
    /// Key deliverables only, for fast deals.
    Simple,
    /// Basic plus risks and stakeholder communication.
    Advanced,
    /// Enterprise SaaS stages planned backwards from go-live.
    Saas,
}

impl TemplateArg {
    /// The template's name in `map_model::templates`.
    pub fn name(self) -> &'static str {
        match self {
            TemplateArg::Basic => "basic",
            TemplateArg::Simple => "simple",
            TemplateArg::Advanced => "advanced",
            TemplateArg::Saas => "saas",
        }
    }
}

/// `map init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Title of the plan, e.g. "Acme rollout".
    pub title: String,
    /// Start from a template.
    #[arg(long, value_enum)]
    pub template: Option<TemplateArg>,
    /// Target go-live date (2026-12-24, +8w, eoq, ...).
    #[arg(long, value_name = "DATE")]
    pub go_live: Option<String>,
    /// The plan's objective, in one sentence.
    #[arg(long, value_name = "TEXT")]
    pub objective: Option<String>,
}

/// `map task ...`.
#[derive(Debug, Subcommand)]
pub enum TaskCmd {
    /// Add a task; prints its id.
    Add(TaskAddArgs),
    /// Change a task's fields (use "none" to clear owner, dates or milestone).
    Edit(TaskEditArgs),
    /// Mark a task done.
    Done(IdArg),
    /// Mark a task in progress.
    Start(IdArg),
    /// Mark a task blocked.
    Block(IdArg),
    /// Drop a task (it will not be done).
    Drop(IdArg),
    /// Reopen a task (back to todo).
    Reopen(IdArg),
    /// Delete a task (it can be restored).
    Rm(IdArg),
    /// Restore a deleted task.
    Restore(IdArg),
    /// List tasks matching a filter, e.g. `owner:bob status:open due.before:eow`.
    List(TaskListArgs),
}

/// A single id (prefix) or title.
#[derive(Debug, Args)]
pub struct IdArg {
    /// Id prefix or exact title.
    pub id: String,
}

/// `map task add`.
#[derive(Debug, Args)]
pub struct TaskAddArgs {
    /// Title of the task.
    pub title: String,
    /// Owner: person id prefix, name or email.
    #[arg(long)]
    pub owner: Option<String>,
    /// Due date (2026-12-24, fri, +3d, eow, ...).
    #[arg(long, value_name = "DATE")]
    pub due: Option<String>,
    /// Start date.
    #[arg(long, value_name = "DATE")]
    pub start: Option<String>,
    /// Milestone: id prefix or title.
    #[arg(long)]
    pub milestone: Option<String>,
    /// Task this one depends on (repeatable): it cannot start before that one is done.
    #[arg(long, value_name = "TASK")]
    pub after: Vec<String>,
    /// Kind of task.
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// Priority.
    #[arg(long, value_enum)]
    pub priority: Option<PriorityArg>,
    /// Longer description.
    #[arg(long)]
    pub description: Option<String>,
}

/// `map task edit`.
#[derive(Debug, Args)]
pub struct TaskEditArgs {
    /// Id prefix or exact title of the task.
    pub id: String,
    /// New title.
    #[arg(long)]
    pub title: Option<String>,
    /// New owner ("none" to clear).
    #[arg(long)]
    pub owner: Option<String>,
    /// New due date ("none" to clear).
    #[arg(long, value_name = "DATE")]
    pub due: Option<String>,
    /// New start date ("none" to clear).
    #[arg(long, value_name = "DATE")]
    pub start: Option<String>,
    /// New milestone ("none" to clear).
    #[arg(long)]
    pub milestone: Option<String>,
    /// New kind.
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// New priority.
    #[arg(long, value_enum)]
    pub priority: Option<PriorityArg>,
    /// New description.
    #[arg(long)]
    pub description: Option<String>,
}

/// `map task list`.
#[derive(Debug, Args)]
pub struct TaskListArgs {
    /// Filter terms: owner:NAME status:open|todo|in_progress|blocked|done|dropped
    /// due.before:DATE due.after:DATE side:buyer milestone:PREFIX kind:K priority:P
    /// overdue +blocked +ready, and words that must appear in the title.
    pub filter: Vec<String>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// Kind of task.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// An action item.
    Task,
    /// A meeting.
    Meeting,
    /// An approval or sign-off.
    Approval,
}

/// Priority, impact or likelihood.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PriorityArg {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
}

/// Status of a risk.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RiskStatusArg {
    /// Still a risk.
    Open,
    /// Mitigation in place.
    Mitigated,
    /// No longer a risk.
    Closed,
}

/// `map milestone ...`.
#[derive(Debug, Subcommand)]
pub enum MilestoneCmd {
    /// Add a milestone; prints its id.
    Add {
        /// Title of the milestone.
        title: String,
        /// Target date.
        #[arg(long, value_name = "DATE")]
        due: Option<String>,
    },
    /// Change a milestone.
    Edit {
        /// Id prefix or exact title.
        id: String,
        /// New title.
        #[arg(long)]
        title: Option<String>,
        /// New target date ("none" to clear).
        #[arg(long, value_name = "DATE")]
        due: Option<String>,
    },
    /// Delete a milestone (it can be restored).
    Rm(IdArg),
    /// Restore a deleted milestone.
    Restore(IdArg),
    /// List milestones with their progress.
    List(JsonFlag),
    /// Reorder a milestone.
    Move(MoveArgs),
}

/// `map milestone move`.
#[derive(Debug, Args)]
pub struct MoveArgs {
    /// Id prefix or exact title of the item to move.
    pub id: String,
    /// Where to put it.
    #[command(flatten)]
    pub to: MoveTo,
}

/// Where to move an item (exactly one).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct MoveTo {
    /// Put it just before this one.
    #[arg(long, value_name = "ID")]
    pub before: Option<String>,
    /// Put it just after this one.
    #[arg(long, value_name = "ID")]
    pub after: Option<String>,
    /// Put it first.
    #[arg(long)]
    pub first: bool,
    /// Put it last.
    #[arg(long)]
    pub last: bool,
}

/// `map person ...`.
#[derive(Debug, Subcommand)]
pub enum PersonCmd {
    /// Add a person; prints their id.
    Add {
        /// Name.
        name: String,
        /// Email.
        #[arg(long)]
        email: Option<String>,
        /// Side of the deal.
        #[arg(long, value_enum)]
        side: Option<SideArg>,
        /// Role: champion, economic buyer, technical evaluator, legal,
        /// security, procurement, account executive, ... or free text.
        #[arg(long)]
        role: Option<String>,
    },
    /// Change a person.
    Edit {
        /// Id prefix, name or email.
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New email.
        #[arg(long)]
        email: Option<String>,
        /// New side.
        #[arg(long, value_enum)]
        side: Option<SideArg>,
        /// New role.
        #[arg(long)]
        role: Option<String>,
    },
    /// Remove a person.
    Rm(IdArg),
    /// List people.
    List(JsonFlag),
}

/// `map risk ...`.
#[derive(Debug, Subcommand)]
pub enum RiskCmd {
    /// Add a risk; prints its id.
    Add {
        /// What could go wrong.
        title: String,
        /// Impact if it happens.
        #[arg(long, value_enum)]
        impact: Option<PriorityArg>,
        /// How likely it is.
        #[arg(long, value_enum)]
        likelihood: Option<PriorityArg>,
        /// What the plan does about it.
        #[arg(long)]
        mitigation: Option<String>,
        /// Owner: person id prefix, name or email.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Change a risk.
    Edit {
        /// Id prefix or exact title.
        id: String,
        /// New title.
        #[arg(long)]
        title: Option<String>,
        /// New impact.
        #[arg(long, value_enum)]
        impact: Option<PriorityArg>,
        /// New likelihood.
        #[arg(long, value_enum)]
        likelihood: Option<PriorityArg>,
        /// New mitigation.
        #[arg(long)]
        mitigation: Option<String>,
        /// New owner ("none" to clear).
        #[arg(long)]
        owner: Option<String>,
        /// New status.
        #[arg(long, value_enum)]
        status: Option<RiskStatusArg>,
    },
    /// Remove a risk.
    Rm(IdArg),
    /// List risks.
    List(JsonFlag),
}

/// `map dep ...`.
#[derive(Debug, Subcommand)]
pub enum DepCmd {
    /// Make task A depend on task B: A waits until B is done.
    Add {
        /// The task that waits (A).
        task: String,
        /// The task it waits for (B).
        on: String,
    },
    /// Remove the dependency of task A on task B.
    Rm {
        /// The task that waits (A).
        task: String,
        /// The task it waits for (B).
        on: String,
    },
}

/// `map log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
    /// Show at most N changes.
    #[arg(short = 'n', long = "limit", value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Ask the plan's relay who delivered each change and flag changes whose
    /// deliverer is neither the claimed author nor relaying for them.
    #[arg(long)]
    pub verified: bool,
}

/// Export formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// The plan view as JSON.
    Json,
    /// A one-page Markdown summary.
    Md,
    /// A one-page, self-contained HTML summary with a Gantt chart.
    Html,
    /// A spreadsheet with the standard MAP columns (`map import` reads it).
    Csv,
    /// A formatted Excel workbook (needs -o FILE or a pipe).
    Xlsx,
    /// Due dates as an iCalendar file of all-day events.
    Ics,
}

/// `map export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    pub format: ExportFormat,
    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// With `--format ics`: only this person's tasks (a personal calendar).
    #[arg(long, value_name = "PERSON")]
    pub owner: Option<String>,
}

/// Import formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportFormat {
    /// A spreadsheet with the standard MAP columns.
    Csv,
}

/// `map import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to read.
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,
    /// Input format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ImportFormat,
    /// Create a new plan with this title (and make it current) instead of
    /// updating the current plan or `--plan`.
    #[arg(long, value_name = "TITLE")]
    pub new: Option<String>,
    /// Add owners that are not people of the plan yet (by name, with the
    /// row's side) instead of refusing the import.
    #[arg(long)]
    pub create_people: bool,
}

/// `map remote ...`.
#[derive(Debug, Subcommand)]
pub enum RemoteCmd {
    /// Add a relay.
    Add {
        /// Short name, e.g. `origin`.
        name: String,
        /// Relay URL, e.g. `ws://127.0.0.1:8787`.
        url: String,
        /// Access token for the relay.
        #[arg(long)]
        token: Option<String>,
        /// For a wss:// relay with its own CA: PEM file of the CA
        /// certificate to trust (besides the system roots; stored with the
        /// remote). Default: $MAP_CA_FILE.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<std::path::PathBuf>,
    },
    /// List relays.
    List(JsonFlag),
    /// Remove a relay.
    #[command(alias = "rm")]
    Remove {
        /// Name of the relay.
        name: String,
    },
}

/// `map sync` (the plan is chosen with the global `--plan`).
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Remote to sync with (default: every remote; plans on no relay yet go
    /// to `origin`, or to the only remote). With `--relay`: the name to
    /// store that relay under (default `origin`).
    #[arg(long)]
    pub remote: Option<String>,
    /// Relay URL to sync with; stored as remote `origin` (or `--remote`)
    /// once the sync succeeds.
    #[arg(long, value_name = "URL")]
    pub relay: Option<String>,
    /// Token for `--relay`.
    #[arg(long, requires = "relay")]
    pub token: Option<String>,
    /// CA certificate (PEM) to trust for a wss:// `--relay`, stored with it.
    #[arg(long, value_name = "FILE", requires = "relay")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Keep running and sync changes as they happen.
    #[arg(long)]
    pub watch: bool,
}

/// Access granted by an invite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccessArg {
    /// Read and write.
    Rw,
    /// Read only.
    Ro,
}

/// `map share`.
#[derive(Debug, Args)]
pub struct ShareArgs {
    /// Plan to share (default: the current plan).
    #[arg(value_name = "PLAN")]
    pub plan_arg: Option<String>,
    /// Access for the invited person.
    #[arg(long, value_enum, default_value = "rw")]
    pub access: AccessArg,
    /// Side of the invited person.
    #[arg(long, value_enum)]
    pub side: Option<SideArg>,
    /// How long the invite is valid (e.g. 7d, 12h).
    #[arg(long, default_value = "7d")]
    pub expires: String,
    /// A link to open in a browser instead of an invite for `map join`:
    /// no install, no account; anyone with the link can use it until it
    /// expires.
    #[arg(long)]
    pub web: bool,
}

/// `map whatif`.
#[derive(Debug, Args)]
pub struct WhatIfArgs {
    /// Task: id prefix or title.
    pub task: String,
    /// How it moves: +5d, -2d, +1w, or a new due date (2026-12-24, fri, ...).
    #[arg(allow_hyphen_values = true)]
    pub shift: String,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// `map next`.
#[derive(Debug, Args)]
pub struct NextArgs {
    /// Only my tasks (the person with my email or name).
    #[arg(long, group = "who")]
    pub me: bool,
    /// Only tasks owned by this side.
    #[arg(long, value_enum, group = "who")]
    pub side: Option<SideArg>,
    /// Only tasks of this person (id prefix, name or email).
    #[arg(long, group = "who")]
    pub owner: Option<String>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// `map waiting`.
#[derive(Debug, Args)]
pub struct WaitingArgs {
    /// The side being waited on.
    #[arg(long, value_enum)]
    pub on: SideArg,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// `map stale`.
#[derive(Debug, Args)]
pub struct StaleArgs {
    /// Untouched for at least this many days.
    #[arg(long, value_name = "N", default_value_t = 7)]
    pub days: u32,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// `map check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Exit 1 when there is any finding.
    #[arg(long)]
    pub strict: bool,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// `map baseline ...`.
#[derive(Debug, Subcommand)]
pub enum BaselineCmd {
    /// Record the plan as it is now under NAME, shared with everyone on it.
    Create {
        /// Name, e.g. "signed-off".
        name: String,
    },
    /// List baselines.
    List(JsonFlag),
}

/// `map timeline`.
#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// Width of the chart area in columns (10-500; default 60).
    #[arg(long, value_name = "N")]
    pub width: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }
}

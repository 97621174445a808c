//! The plan as a web page: pure functions from the plan's view, its history
//! and what the visitor may do, to HTML. Every piece of text from the plan
//! goes through [`esc`]; the page carries no inline script or style (the
//! Content-Security-Policy forbids them), so it works with JavaScript off
//! and the script only adds live updates.

use std::fmt::Write as _;

use map_export::html::{esc, esc_lines as lines};
use map_model::PlanView;
use map_model::history::HistoryEntry;
use map_model::identity::Side;
use map_model::schema::TaskStatus;
use map_model::view::TaskView;

/// How many changes the history section lists.
pub const HISTORY_ROWS: usize = 30;

/// What the page needs besides the plan.
pub struct PageContext<'a> {
    /// The plan id (for URLs).
    pub plan: &'a str,
    /// Whether the visitor may edit.
    pub can_write: bool,
    /// The visitor's name, once given.
    pub user: Option<&'a str>,
    /// The session's CSRF token (goes into every form).
    pub csrf: &'a str,
    /// The timeline as SVG, if any task or milestone has dates.
    pub timeline: Option<&'a str>,
    /// Printable view: no controls, no script.
    pub print: bool,
}

/// The whole page.
pub fn page(view: &PlanView, history: &[HistoryEntry], cx: &PageContext<'_>) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let title = esc(&view.header.title);
    let base = format!("/web/plans/{}", esc(cx.plan));
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} · map</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/web/static/app.css">
"#
    );
    if !cx.print {
        out.push_str("<script src=\"/web/static/app.js\" defer></script>\n");
    }
    let _ = writeln!(
        out,
        "</head>\n<body class=\"{}\" data-live=\"{base}/live\" data-events=\"{base}/events\">",
        if cx.print { "print" } else { "screen" }
    );
    if !cx.print {
        out.push_str("<a class=\"skip\" href=\"#plan\">Skip to the plan</a>\n");
        let _ = write!(
            out,
            "<header class=\"bar\"><span class=\"brand\">map</span> <span class=\"badge\">{}</span>",
            if cx.can_write {
                "can edit"
            } else {
                "read-only"
            }
        );
        if let Some(name) = cx.user {
            let _ = write!(
                out,
                " <span class=\"you\">signed in as {}</span>",
                esc(name)
            );
        }
        let _ = writeln!(
            out,
            " <nav aria-label=\"Plan\"><a href=\"{base}/print\">Printable view</a> <a href=\"#downloads\">Downloads</a></nav></header>\n\
             <p id=\"live-status\" class=\"live-status\" role=\"status\" aria-live=\"polite\"></p>"
        );
    }
    out.push_str("<main id=\"plan\">\n");
    out.push_str(&fragment(view, history, cx));
    out.push_str("</main>\n");
    let back = if cx.print {
        format!(" · <a href=\"{base}\">Back to the live page</a>")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "<footer>Plan <code>{}</code> · as of {}{back}</footer>\n</body>\n</html>",
        esc(cx.plan),
        view.today
    );
    out
}

/// The content of `<main id="plan">`: what live updates replace.
pub fn fragment(view: &PlanView, history: &[HistoryEntry], cx: &PageContext<'_>) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let base = format!("/web/plans/{}", esc(cx.plan));
    let edit = cx.can_write && !cx.print;
    let _ = writeln!(
        out,
        "<div id=\"plan-state\" data-heads=\"{}\"></div>",
        esc(&view.heads.join(","))
    );
    header(&mut out, view);
    if !view.warnings.is_empty() {
        out.push_str("<section aria-labelledby=\"warnings-h\" class=\"warnings\"><h2 id=\"warnings-h\">Needs attention</h2><ul>");
        for w in &view.warnings {
            let _ = write!(out, "<li>{}</li>", esc(&w.message));
        }
        out.push_str("</ul></section>\n");
    }
    milestones(&mut out, view);
    tasks(&mut out, view, cx, &base, edit);
    if edit {
        add_task_form(&mut out, view, cx, &base);
    }
    section(&mut out, "timeline", "Timeline");
    match cx.timeline {
        Some(svg) => {
            // The SVG is generated from the plan by map-export, which escapes
            // every text it draws.
            let _ = write!(
                out,
                "<figure class=\"timeline\">{svg}<figcaption>Tasks by date: bar colour shows status (green is done), a red outline marks the critical path, ◆ marks a milestone and the dashed line is today.</figcaption></figure>"
            );
        }
        None => {
            out.push_str("<p>No dates yet: give tasks due dates to see them on a timeline.</p>")
        }
    }
    out.push_str("</section>\n");
    risks(&mut out, view);
    people(&mut out, view);
    history_section(&mut out, history);
    if !cx.print {
        let _ = writeln!(
            out,
            "<section id=\"downloads\" aria-labelledby=\"downloads-h\"><h2 id=\"downloads-h\">Downloads</h2><ul class=\"downloads\">\
             <li><a href=\"{base}/export/md\" download>Markdown summary (.md)</a></li>\
             <li><a href=\"{base}/export/csv\" download>Tasks for spreadsheets (.csv)</a></li>\
             <li><a href=\"{base}/export/xlsx\" download>Excel workbook (.xlsx)</a></li>\
             <li><a href=\"{base}/export/ics\" download>Due dates for calendars (.ics)</a></li>\
             </ul></section>"
        );
    }
    out
}

fn header(out: &mut String, view: &PlanView) {
    let h = &view.header;
    let _ = write!(out, "<h1>{}</h1>\n<dl class=\"facts\">", esc(&h.title));
    if !h.objective.trim().is_empty() {
        let _ = write!(out, "<dt>Objective</dt><dd>{}</dd>", lines(&h.objective));
    }
    if !h.success_criteria.trim().is_empty() {
        let _ = write!(
            out,
            "<dt>Success criteria</dt><dd>{}</dd>",
            lines(&h.success_criteria)
        );
    }
    if let Some(d) = h.signature_date {
        let _ = write!(out, "<dt>Target signature</dt><dd>{}</dd>", date(d));
    }
    if let Some(d) = h.go_live {
        let _ = write!(out, "<dt>Go-live</dt><dd>{}</dd>", date(d));
    }
    let p = view.progress;
    let _ = writeln!(
        out,
        "<dt>Progress</dt><dd><progress value=\"{}\" max=\"{}\" aria-label=\"Plan progress\">{}%</progress> {}% ({} of {} tasks done)</dd></dl>",
        p.done,
        p.total.max(1),
        p.percent,
        p.percent,
        p.done,
        p.total
    );
}

fn milestones(out: &mut String, view: &PlanView) {
    if view.milestones.is_empty() {
        return;
    }
    section(out, "milestones", "Milestones");
    table_head(out, "milestones", &["Milestone", "Due", "Progress"]);
    for m in &view.milestones {
        let _ = write!(
            out,
            "<tr id=\"milestone-{}\"{}><th scope=\"row\">{}</th><td>{}{}</td><td><progress value=\"{}\" max=\"{}\" aria-label=\"Progress of {}\">{}%</progress> {}% ({}/{})</td></tr>",
            esc(&m.id),
            if m.overdue { " class=\"overdue\"" } else { "" },
            esc(&m.title),
            m.due.map(date).unwrap_or_default(),
            if m.overdue {
                " <strong class=\"flag\">overdue</strong>"
            } else {
                ""
            },
            m.progress.done,
            m.progress.total.max(1),
            esc(&m.title),
            m.progress.percent,
            m.progress.percent,
            m.progress.done,
            m.progress.total
        );
    }
    out.push_str(TABLE_END);
    out.push_str("</section>\n");
}

fn status_label(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::Todo => "to do",
        TaskStatus::InProgress => "in progress",
        TaskStatus::Blocked => "blocked",
        TaskStatus::Done => "done",
        TaskStatus::Dropped => "dropped",
    }
}

fn tasks(out: &mut String, view: &PlanView, cx: &PageContext<'_>, base: &str, edit: bool) {
    section(out, "tasks", "Tasks");
    if view.tasks.is_empty() {
        out.push_str("<p>No tasks yet.</p></section>\n");
        return;
    }
    let mut groups: Vec<(Option<&str>, String)> = view
        .milestones
        .iter()
        .map(|m| (Some(m.id.as_str()), m.title.clone()))
        .collect();
    groups.push((None, "No milestone".to_owned()));
    for (milestone, title) in groups {
        let tasks: Vec<&TaskView> = view
            .tasks
            .iter()
            .filter(|t| t.milestone.as_deref() == milestone)
            .collect();
        if tasks.is_empty() {
            continue;
        }
        let _ = write!(out, "<h3>{}</h3>", esc(&title));
        let columns: &[&str] = if edit {
            &["Task", "Owner", "Due", "Status", "Change"]
        } else {
            &["Task", "Owner", "Due", "Status"]
        };
        table_head(out, "tasks", columns);
        out.push('\n');
        for t in tasks {
            task_row(out, view, t, cx, base, edit);
        }
        out.push_str(TABLE_END);
        out.push('\n');
    }
    out.push_str("</section>\n");
}

fn task_row(
    out: &mut String,
    view: &PlanView,
    t: &TaskView,
    cx: &PageContext<'_>,
    base: &str,
    edit: bool,
) {
    let mut classes = vec!["task"];
    if t.overdue {
        classes.push("overdue");
    }
    if t.blocked {
        classes.push("blocked");
    }
    let id = esc(&t.id);
    let _ = write!(
        out,
        "<tr class=\"{}\" id=\"task-{id}\" data-status=\"{}\"><td><span class=\"task-title\">{}</span>",
        classes.join(" "),
        t.status.as_str(),
        esc(&t.title)
    );
    if !t.blocked_by.is_empty() {
        let names: Vec<String> = t
            .blocked_by
            .iter()
            .map(|d| {
                view.task(d)
                    .map(|x| esc(&x.title))
                    .unwrap_or_else(|| esc(d))
            })
            .collect();
        let _ = write!(
            out,
            "<br><small class=\"waiting\">waits for {}</small>",
            names.join(", ")
        );
    }
    if !t.description.trim().is_empty() {
        let _ = write!(
            out,
            "<br><small class=\"description\">{}</small>",
            lines(&t.description)
        );
    }
    comments(out, view, t, cx, base, edit);
    let owner = match (&t.owner_name, t.owner_side) {
        (Some(name), Some(side)) => format!("{} <small>({})</small>", esc(name), side_label(side)),
        (Some(name), None) => esc(name),
        _ => "<span class=\"none\">unassigned</span>".to_owned(),
    };
    let due = match t.due {
        Some(d) if t.overdue => {
            format!("{} <strong class=\"flag\">overdue</strong>", date(d))
        }
        Some(d) => date(d),
        None => String::new(),
    };
    let _ = write!(
        out,
        "</td><td>{owner}</td><td>{due}</td><td class=\"status status-{}\">{}</td>",
        t.status.as_str(),
        status_label(t.status)
    );
    if edit {
        let csrf = esc(cx.csrf);
        let _ = write!(
            out,
            "<td class=\"actions\"><form class=\"status-form\" method=\"post\" action=\"{base}/tasks/{id}/status\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">"
        );
        for (status, label) in [
            (TaskStatus::Done, "Done"),
            (TaskStatus::InProgress, "Start"),
            (TaskStatus::Todo, "To do"),
        ] {
            if t.status != status {
                let _ = write!(
                    out,
                    "<button type=\"submit\" name=\"status\" value=\"{}\" aria-label=\"{label}: {}\">{label}</button>",
                    status.as_str(),
                    esc(&t.title)
                );
            }
        }
        let _ = write!(
            out,
            "</form><details class=\"edit\"><summary>Edit<span class=\"visually-hidden\"> {}</span></summary><form method=\"post\" action=\"{base}/tasks/{id}/edit\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"due-{id}\">Due date</label><input type=\"date\" id=\"due-{id}\" name=\"due\" value=\"{}\">\
             <label for=\"owner-{id}\">Owner</label>{}\
             <button type=\"submit\">Save</button></form></details></td>",
            esc(&t.title),
            t.due.map(|d| d.to_string()).unwrap_or_default(),
            owner_select(view, &format!("owner-{id}"), t.owner.as_deref())
        );
    }
    out.push_str("</tr>\n");
}

fn comments(
    out: &mut String,
    view: &PlanView,
    t: &TaskView,
    cx: &PageContext<'_>,
    base: &str,
    edit: bool,
) {
    let list: Vec<_> = view.comments.iter().filter(|c| c.target == t.id).collect();
    if list.is_empty() && !edit {
        return;
    }
    let summary = match list.len() {
        0 => "Comment".to_owned(),
        1 => "1 comment".to_owned(),
        n => format!("{n} comments"),
    };
    let _ = write!(
        out,
        "<details class=\"comments\"><summary>{summary}<span class=\"visually-hidden\"> on {}</span></summary>",
        esc(&t.title)
    );
    if !list.is_empty() {
        out.push_str("<ul>");
        for c in list {
            let _ = write!(
                out,
                "<li><strong>{}</strong> <small>{}</small><br>{}</li>",
                esc(&author_name(&c.author)),
                when(c.at),
                lines(&c.text)
            );
        }
        out.push_str("</ul>");
    }
    if edit {
        let id = esc(&t.id);
        let _ = write!(
            out,
            "<form method=\"post\" action=\"{base}/comments\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"target\" value=\"{id}\">\
             <label for=\"comment-{id}\">Add a comment</label><textarea id=\"comment-{id}\" name=\"text\" rows=\"2\" required maxlength=\"4000\"></textarea>\
             <button type=\"submit\">Comment</button></form>",
            esc(cx.csrf)
        );
    }
    out.push_str("</details>");
}

fn owner_select(view: &PlanView, id: &str, current: Option<&str>) -> String {
    let mut s =
        format!("<select id=\"{id}\" name=\"owner\"><option value=\"\">unassigned</option>");
    for p in &view.people {
        let _ = write!(
            s,
            "<option value=\"{}\"{}>{} ({})</option>",
            esc(&p.id),
            if current == Some(p.id.as_str()) {
                " selected"
            } else {
                ""
            },
            esc(&p.name),
            side_label(p.side)
        );
    }
    s.push_str("</select>");
    s
}

fn add_task_form(out: &mut String, view: &PlanView, cx: &PageContext<'_>, base: &str) {
    let _ = write!(
        out,
        "<section aria-labelledby=\"add-h\" class=\"add-task\"><h2 id=\"add-h\">Add a task</h2>\
         <form method=\"post\" action=\"{base}/tasks\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"new-title\">Title</label><input id=\"new-title\" name=\"title\" required maxlength=\"500\">\
         <label for=\"new-milestone\">Milestone</label><select id=\"new-milestone\" name=\"milestone\"><option value=\"\">none</option>",
        esc(cx.csrf)
    );
    for m in &view.milestones {
        let _ = write!(
            out,
            "<option value=\"{}\">{}</option>",
            esc(&m.id),
            esc(&m.title)
        );
    }
    let _ = writeln!(
        out,
        "</select><label for=\"new-owner\">Owner</label>{}\
         <label for=\"new-due\">Due date</label><input type=\"date\" id=\"new-due\" name=\"due\">\
         <button type=\"submit\">Add task</button></form></section>",
        owner_select(view, "new-owner", None)
    );
}

fn risks(out: &mut String, view: &PlanView) {
    section(out, "risks", "Risks");
    if view.risks.is_empty() {
        out.push_str("<p>No risks recorded.</p></section>\n");
        return;
    }
    table_head(
        out,
        "risks",
        &[
            "Risk",
            "Impact",
            "Likelihood",
            "Mitigation",
            "Owner",
            "Status",
        ],
    );
    for r in &view.risks {
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.title),
            r.impact,
            r.likelihood,
            lines(&r.mitigation),
            r.owner_name.as_deref().map(esc).unwrap_or_default(),
            r.status
        );
    }
    out.push_str(TABLE_END);
    out.push_str("</section>\n");
}

fn people(out: &mut String, view: &PlanView) {
    section(out, "people", "People");
    if view.people.is_empty() {
        out.push_str("<p>No people yet.</p></section>\n");
        return;
    }
    table_head(
        out,
        "people",
        &["Name", "Side", "Role", "Email", "Open tasks"],
    );
    for side in [Side::Seller, Side::Buyer, Side::Other] {
        for p in view.people.iter().filter(|p| p.side == side) {
            let _ = write!(
                out,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.name),
                side_label(p.side),
                esc(&p.role),
                esc(&p.email),
                p.open_tasks
            );
        }
    }
    out.push_str(TABLE_END);
    out.push_str("</section>\n");
}

fn history_section(out: &mut String, history: &[HistoryEntry]) {
    section(out, "history", "History");
    if history.is_empty() {
        out.push_str("<p>No changes yet.</p></section>\n");
        return;
    }
    out.push_str("<ol class=\"history\" reversed>");
    for h in history.iter().take(HISTORY_ROWS) {
        let _ = write!(
            out,
            "<li><time>{}</time> <strong>{}</strong> {}</li>",
            when(h.time),
            esc(&author_name(&h.author)),
            esc(if h.message.is_empty() {
                "(no message)"
            } else {
                &h.message
            })
        );
    }
    out.push_str("</ol></section>\n");
}

/// A page with only a heading and some content (errors, the name form).
fn simple_page(title: &str, content: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{0} · map</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/web/static/app.css\"></head>\n<body class=\"screen\"><main id=\"plan\"><h1>{0}</h1>{content}</main></body></html>\n",
        esc(title)
    )
}

/// A simple error page: what went wrong and what to do.
pub fn error_page(title: &str, message: &str, back: Option<&str>) -> String {
    let back = back
        .map(|b| format!("<p><a href=\"{}\">Back to the plan</a></p>", esc(b)))
        .unwrap_or_default();
    simple_page(title, &format!("<p>{}</p>{back}", esc(message)))
}

/// The form a read-write visitor fills in once: who they are.
pub fn name_page(view: &PlanView, plan: &str, csrf: &str) -> String {
    simple_page(
        &view.header.title,
        &format!(
            "<p>You were invited to work on this plan. Your name goes with every change you make, so the others know who did what.</p>\
             <form id=\"name-form\" method=\"post\" action=\"/web/plans/{0}/name\"><input type=\"hidden\" name=\"csrf\" value=\"{1}\">\
             <label for=\"name\">Your name</label><input id=\"name\" name=\"name\" required maxlength=\"100\" autocomplete=\"name\">\
             <label for=\"email\">Email (optional)</label><input id=\"email\" name=\"email\" type=\"email\" maxlength=\"200\" autocomplete=\"email\">\
             <button type=\"submit\">Continue</button></form>",
            esc(plan),
            esc(csrf)
        ),
    )
}

/// Open a `<section>` with its heading; the caller closes it.
fn section(out: &mut String, id: &str, title: &str) {
    let _ = write!(
        out,
        "<section aria-labelledby=\"{id}-h\"><h2 id=\"{id}-h\">{title}</h2>"
    );
}

/// Open a scrolling table with its header row; close it with [`TABLE_END`].
fn table_head(out: &mut String, class: &str, columns: &[&str]) {
    let _ = write!(
        out,
        "<div class=\"scroll\"><table class=\"{class}\"><thead><tr>"
    );
    for c in columns {
        let _ = write!(out, "<th scope=\"col\">{c}</th>");
    }
    out.push_str("</tr></thead><tbody>");
}

const TABLE_END: &str = "</tbody></table></div>";

fn date(d: chrono::NaiveDate) -> String {
    format!("<time datetime=\"{d}\">{}</time>", d.format("%a %d %b %Y"))
}

fn when(ms: i64) -> String {
    format!("{} UTC", map_export::when(ms))
}

fn author_name(author: &str) -> String {
    map_export::author_name(Some(author))
}

fn side_label(side: Side) -> &'static str {
    side.as_str()
}

//! The XLSX export (written with `rust_xlsxwriter`): a formatted workbook
//! for people who live in spreadsheets. Sheets: Tasks (the CSV columns plus
//! `overdue`, bold frozen header, autofilter, a fill per status, real Excel
//! dates), Milestones (progress as a number formatted as a percentage),
//! People and Risks.

use chrono::{Datelike, NaiveDate};
use map_model::schema::TaskStatus;
use rust_xlsxwriter::{Color, ExcelDateTime, Format, FormatBorder, Workbook, Worksheet};

use crate::Export;
use crate::csv::{COLUMNS, deps_cell, milestone_cell, notes_cell, owner_cell};
use crate::error::ExportError;

type Result<T, E = ExportError> = std::result::Result<T, E>;

/// The fill of a task row's status cell.
pub fn status_color(s: TaskStatus) -> Option<Color> {
    match s {
        TaskStatus::Todo => None,
        TaskStatus::InProgress => Some(Color::RGB(0xDBEAFE)),
        TaskStatus::Blocked => Some(Color::RGB(0xF5D0FE)),
        TaskStatus::Done => Some(Color::RGB(0xDCFCE7)),
        TaskStatus::Dropped => Some(Color::RGB(0xE5E7EB)),
    }
}

struct Formats {
    header: Format,
    date: Format,
    overdue_date: Format,
    wrap: Format,
    percent: Format,
}

fn formats() -> Formats {
    Formats {
        header: Format::new()
            .set_bold()
            .set_background_color(Color::RGB(0xE2E8F0))
            .set_border(FormatBorder::Thin),
        date: Format::new().set_num_format("yyyy-mm-dd"),
        overdue_date: Format::new()
            .set_num_format("yyyy-mm-dd")
            .set_font_color(Color::RGB(0xB91C1C))
            .set_bold(),
        wrap: Format::new().set_text_wrap(),
        percent: Format::new().set_num_format("0%"),
    }
}

fn excel_date(d: NaiveDate) -> Result<ExcelDateTime> {
    let year = u16::try_from(d.year()).map_err(|_| ExportError::WorkbookDate(d))?;
    // Months and days always fit in a u8.
    ExcelDateTime::from_ymd(year, d.month() as u8, d.day() as u8).map_err(ExportError::from)
}

fn write_date(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    d: Option<NaiveDate>,
    f: &Format,
) -> Result<()> {
    if let Some(d) = d {
        ws.write_datetime_with_format(row, col, excel_date(d)?, f)?;
    }
    Ok(())
}

fn header(ws: &mut Worksheet, name: &str, cols: &[(&str, f64)], f: &Formats) -> Result<()> {
    ws.set_name(name)?;
    for (i, (title, width)) in cols.iter().enumerate() {
        let c = i as u16;
        ws.write_string_with_format(0, c, *title, &f.header)?;
        ws.set_column_width(c, *width)?;
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

fn finish(ws: &mut Worksheet, rows: u32, cols: usize) -> Result<()> {
    let last_col = cols.saturating_sub(1) as u16;
    ws.autofilter(0, 0, rows.max(1), last_col)?;
    Ok(())
}

fn tasks_sheet(e: &Export, f: &Formats) -> Result<Worksheet> {
    let view = &e.view;
    let mut ws = Worksheet::new();
    let widths = [
        14.0, 36.0, 40.0, 20.0, 18.0, 8.0, 11.0, 11.0, 12.0, 11.0, 30.0, 40.0, 9.0,
    ];
    let cols: Vec<(&str, f64)> = COLUMNS
        .iter()
        .copied()
        .chain(["overdue"])
        .zip(widths)
        .collect();
    header(&mut ws, "Tasks", &cols, f)?;
    let mut r = 0u32;
    for t in &view.tasks {
        r += 1;
        let text = |ws: &mut Worksheet, c: u16, s: &str| -> Result<()> {
            if !s.is_empty() {
                ws.write_string(r, c, s)?;
            }
            Ok(())
        };
        text(&mut ws, 0, &t.id)?;
        text(&mut ws, 1, &t.title)?;
        if !t.description.is_empty() {
            ws.write_string_with_format(r, 2, &t.description, &f.wrap)?;
        }
        text(&mut ws, 3, &milestone_cell(t, view))?;
        text(&mut ws, 4, &owner_cell(t, view))?;
        text(
            &mut ws,
            5,
            &t.owner_side.map(|s| s.to_string()).unwrap_or_default(),
        )?;
        write_date(&mut ws, r, 6, t.start, &f.date)?;
        let due_format = if t.overdue { &f.overdue_date } else { &f.date };
        write_date(&mut ws, r, 7, t.due, due_format)?;
        match status_color(t.status) {
            Some(c) => {
                let fill = Format::new()
                    .set_background_color(c)
                    .set_border(FormatBorder::Thin);
                ws.write_string_with_format(r, 8, t.status.as_str(), &fill)?;
            }
            None => {
                ws.write_string(r, 8, t.status.as_str())?;
            }
        }
        write_date(&mut ws, r, 9, t.completed, &f.date)?;
        text(&mut ws, 10, &deps_cell(t, view))?;
        text(&mut ws, 11, &notes_cell(t, view))?;
        if t.overdue {
            ws.write_string(r, 12, "yes")?;
        }
    }
    finish(&mut ws, r, cols.len())?;
    Ok(ws)
}

fn milestones_sheet(e: &Export, f: &Formats) -> Result<Worksheet> {
    let mut ws = Worksheet::new();
    let cols = [
        ("milestone", 30.0),
        ("due", 11.0),
        ("tasks done", 11.0),
        ("tasks", 8.0),
        ("progress", 10.0),
        ("overdue", 9.0),
    ];
    header(&mut ws, "Milestones", &cols, f)?;
    let mut r = 0u32;
    for m in &e.view.milestones {
        r += 1;
        ws.write_string(r, 0, &m.title)?;
        write_date(&mut ws, r, 1, m.due, &f.date)?;
        ws.write_number(r, 2, m.progress.done as f64)?;
        ws.write_number(r, 3, m.progress.total as f64)?;
        ws.write_number_with_format(r, 4, f64::from(m.progress.percent) / 100.0, &f.percent)?;
        if m.overdue {
            ws.write_string(r, 5, "yes")?;
        }
    }
    finish(&mut ws, r, cols.len())?;
    Ok(ws)
}

fn people_sheet(e: &Export, f: &Formats) -> Result<Worksheet> {
    let mut ws = Worksheet::new();
    let cols = [
        ("name", 24.0),
        ("side", 8.0),
        ("role", 22.0),
        ("email", 28.0),
        ("open tasks", 11.0),
    ];
    header(&mut ws, "People", &cols, f)?;
    let mut r = 0u32;
    for p in &e.view.people {
        r += 1;
        ws.write_string(r, 0, &p.name)?;
        ws.write_string(r, 1, p.side.as_str())?;
        ws.write_string(r, 2, &p.role)?;
        ws.write_string(r, 3, &p.email)?;
        ws.write_number(r, 4, p.open_tasks as f64)?;
    }
    finish(&mut ws, r, cols.len())?;
    Ok(ws)
}

fn risks_sheet(e: &Export, f: &Formats) -> Result<Worksheet> {
    let mut ws = Worksheet::new();
    let cols = [
        ("risk", 34.0),
        ("impact", 9.0),
        ("likelihood", 11.0),
        ("mitigation", 40.0),
        ("owner", 20.0),
        ("status", 11.0),
    ];
    header(&mut ws, "Risks", &cols, f)?;
    let mut r = 0u32;
    for k in &e.view.risks {
        r += 1;
        ws.write_string(r, 0, &k.title)?;
        ws.write_string(r, 1, k.impact.as_str())?;
        ws.write_string(r, 2, k.likelihood.as_str())?;
        ws.write_string_with_format(r, 3, &k.mitigation, &f.wrap)?;
        ws.write_string(r, 4, k.owner_name.as_deref().unwrap_or(""))?;
        ws.write_string(r, 5, k.status.as_str())?;
    }
    finish(&mut ws, r, cols.len())?;
    Ok(ws)
}

/// The workbook's bytes.
pub fn workbook(e: &Export) -> Result<Vec<u8>, ExportError> {
    let f = formats();
    let mut wb = Workbook::new();
    wb.push_worksheet(tasks_sheet(e, &f)?);
    wb.push_worksheet(milestones_sheet(e, &f)?);
    wb.push_worksheet(people_sheet(e, &f)?);
    wb.push_worksheet(risks_sheet(e, &f)?);
    wb.save_to_buffer().map_err(ExportError::from)
}

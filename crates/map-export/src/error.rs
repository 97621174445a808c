//! Errors of the exporters. Only the binary formats can fail (CSV and
//! XLSX writers); the text formats are plain strings. Messages say what
//! went wrong, the way `map export` prints them.

use chrono::NaiveDate;

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The CSV writer failed.
    #[error("cannot write CSV: {0}")]
    Csv(#[from] ::csv::Error),
    /// The XLSX writer failed.
    #[error("cannot write the workbook: {0}")]
    Workbook(#[from] rust_xlsxwriter::XlsxError),
    /// A date whose year a workbook cannot hold.
    #[error("date {0} cannot be written to a workbook")]
    WorkbookDate(NaiveDate),
}

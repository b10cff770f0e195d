//! Result sets of the admin console: RowDescription with PgBouncer's
//! column types, DataRows in text format, CommandComplete.

use bytes::{BufMut, BytesMut};
use sluice_protocol::builders::put_message;

/// A column type, as PgBouncer declares them (the OIDs exporters see).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Text,
    Int4,
    Int8,
    Numeric,
}

impl ColType {
    fn oid(self) -> (i32, i16) {
        match self {
            ColType::Text => (25, -1),
            ColType::Int4 => (23, 4),
            ColType::Int8 => (20, 8),
            ColType::Numeric => (1700, -1),
        }
    }
}

/// One value of a row, printed in text format; `Null` is SQL NULL.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Int(i64),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

macro_rules! int_value {
    ($($t:ty),*) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::Int(v as i64)
            }
        })*
    };
}
int_value!(i32, i64, u16, u32, u64, usize);

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Int(b as i64)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map(Into::into).unwrap_or(Value::Null)
    }
}

pub struct ResultSet {
    columns: Vec<(&'static str, ColType)>,
    rows: Vec<Vec<Value>>,
}

impl ResultSet {
    pub fn new(columns: &[(&'static str, ColType)]) -> ResultSet {
        ResultSet {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn column_names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|c| c.0).collect()
    }

    /// Adds a row; it must have one value per column.
    pub fn row(&mut self, values: Vec<Value>) {
        debug_assert_eq!(values.len(), self.columns.len(), "row width");
        self.rows.push(values);
    }

    pub fn rows(&self) -> &[Vec<Value>] {
        &self.rows
    }

    /// RowDescription, DataRows and CommandComplete `tag`.
    pub fn write(&self, out: &mut BytesMut, tag: &str) {
        put_message(out, b'T', |b| {
            b.put_i16(self.columns.len() as i16);
            for (name, ty) in &self.columns {
                let (oid, size) = ty.oid();
                b.put_slice(name.as_bytes());
                b.put_u8(0);
                b.put_i32(0); // table
                b.put_i16(0); // column
                b.put_i32(oid);
                b.put_i16(size);
                b.put_i32(-1); // typmod
                b.put_i16(0); // text format
            }
        });
        for row in &self.rows {
            put_message(out, b'D', |b| {
                b.put_i16(row.len() as i16);
                for v in row {
                    let text = match v {
                        Value::Null => {
                            b.put_i32(-1);
                            continue;
                        }
                        Value::Text(s) => std::borrow::Cow::Borrowed(s.as_str()),
                        Value::Int(i) => std::borrow::Cow::Owned(i.to_string()),
                    };
                    b.put_i32(text.len() as i32);
                    b.put_slice(text.as_bytes());
                }
            });
        }
        put_command_complete(out, tag);
    }
}

pub fn put_command_complete(out: &mut BytesMut, tag: &str) {
    put_message(out, b'C', |b| {
        b.put_slice(tag.as_bytes());
        b.put_u8(0);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_set_is_described_then_sent_row_by_row() {
        let mut rs = ResultSet::new(&[("name", ColType::Text), ("n", ColType::Int8)]);
        rs.row(vec!["a".into(), 5u64.into()]);
        rs.row(vec![Value::Null, 0i32.into()]);
        let mut out = BytesMut::new();
        rs.write(&mut out, "SHOW");
        assert_eq!(out[0], b'T');
        let tags: Vec<u8> = {
            let mut v = Vec::new();
            let mut i = 0;
            while i < out.len() {
                v.push(out[i]);
                let len = i32::from_be_bytes(out[i + 1..i + 5].try_into().unwrap()) as usize;
                i += 1 + len;
            }
            v
        };
        assert_eq!(tags, b"TDDC");
        assert!(out.windows(4).any(|w| w == b"SHOW"));
    }
}

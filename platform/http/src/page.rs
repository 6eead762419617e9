//! Cursor pagination for the admin lists: a page of at most `limit` items in a stable order
//! (by a UUID key), and an opaque `next_cursor` to ask for the one after.
//!
//! The cursor names the last item of its page and the list it belongs to. It is opaque on
//! purpose (hex of a version, the list's tag and the key): clients hand it back, and the
//! encoding can change without breaking them. A cursor that does not decode, or that comes
//! from another list, is refused as `invalid_cursor` rather than read as "from the start",
//! which would repeat items silently.

use uuid::Uuid;

/// Items per page when the request names no `limit`.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest `limit` accepted.
pub const MAX_LIMIT: u32 = 200;

/// The cursor format's version, its first byte: a later format can tell old cursors apart.
const VERSION: u8 = 1;

/// The lists that hand out cursors; the tag is in the cursor, so one list's cursor is
/// refused by another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Users,
    ApiKeys,
}

impl List {
    fn tag(self) -> u8 {
        match self {
            List::Users => 1,
            List::ApiKeys => 2,
        }
    }
}

/// Why a page request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    LimitOutOfRange,
    InvalidCursor,
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::LimitOutOfRange => write!(f, "limit must be 1 to {MAX_LIMIT}"),
            PageError::InvalidCursor => {
                f.write_str("cursor is not a next_cursor this list handed out")
            }
        }
    }
}

impl std::error::Error for PageError {}

/// A parsed page request: how many items, after which key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    /// The last key of the previous page; None: from the start.
    pub after: Option<Uuid>,
}

impl PageRequest {
    pub fn parse(list: List, limit: Option<u32>, cursor: Option<&str>) -> Result<Self, PageError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(PageError::LimitOutOfRange);
        }
        let after = cursor.map(|cursor| decode(list, cursor)).transpose()?;
        Ok(Self { limit, after })
    }

    /// How many rows to fetch: one more than the page, to learn whether another follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// The page out of the fetched rows (in key order, at most [`PageRequest::fetch`] of
    /// them), and the cursor of the next page when there is one.
    pub fn page<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> Uuid, list: List) -> Page<T> {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let next_cursor = if more {
            rows.last().map(|last| encode(list, key(last)))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

/// One page of a list.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// None on the last page.
    pub next_cursor: Option<String>,
}

fn encode(list: List, after: Uuid) -> String {
    let mut bytes = Vec::with_capacity(18);
    bytes.extend([VERSION, list.tag()]);
    bytes.extend(after.as_bytes());
    hex::encode(bytes)
}

fn decode(list: List, cursor: &str) -> Result<Uuid, PageError> {
    let bytes = hex::decode(cursor).map_err(|_| PageError::InvalidCursor)?;
    match bytes.as_slice() {
        [VERSION, tag, key @ ..] if *tag == list.tag() => {
            Uuid::from_slice(key).map_err(|_| PageError::InvalidCursor)
        }
        _ => Err(PageError::InvalidCursor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_names_its_list_and_key() {
        let key = Uuid::now_v7();
        let cursor = encode(List::Users, key);
        let request = PageRequest::parse(List::Users, Some(3), Some(&cursor)).unwrap();
        assert_eq!(request.after, Some(key));
        assert_eq!(
            PageRequest::parse(List::ApiKeys, None, Some(&cursor)),
            Err(PageError::InvalidCursor)
        );
        for bad in [
            "",
            "zz",
            "0101",
            &cursor[..cursor.len() - 2],
            &format!("{cursor}00"),
        ] {
            assert_eq!(
                PageRequest::parse(List::Users, None, Some(bad)),
                Err(PageError::InvalidCursor),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(
            PageRequest::parse(List::Users, None, None).unwrap().limit,
            DEFAULT_LIMIT
        );
        for limit in [1, MAX_LIMIT] {
            assert!(PageRequest::parse(List::Users, Some(limit), None).is_ok());
        }
        for limit in [0, MAX_LIMIT + 1] {
            assert_eq!(
                PageRequest::parse(List::Users, Some(limit), None),
                Err(PageError::LimitOutOfRange)
            );
        }
    }

    #[test]
    fn the_last_page_has_no_next_cursor() {
        let keys: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let request = PageRequest::parse(List::Users, Some(2), None).unwrap();
        let page = request.page(keys[..3].to_vec(), |k| *k, List::Users);
        assert_eq!(page.items, keys[..2]);
        let next = PageRequest::parse(List::Users, Some(2), page.next_cursor.as_deref()).unwrap();
        assert_eq!(next.after, Some(keys[1]));
        let last = next.page(keys[2..3].to_vec(), |k| *k, List::Users);
        assert_eq!((last.items, last.next_cursor), (keys[2..3].to_vec(), None));
    }
}

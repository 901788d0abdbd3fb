//! Pages from files: page files (text, HTML), JSON envelopes and JSON lines of envelopes, WARC
//! files (`.warc`, `.warc.gz`), directories of them, and standard input. Offline splitting, the
//! replay of pages to Kafka and the demo read their pages through here.
//!
//! What an input holds is told by its content, not its name: gzip is recognised by its magic
//! bytes, WARC by its `WARC/` version line, envelopes by a leading `{`; anything else is a page.
//! Names matter only when searching directories, and for telling HTML from text.

pub mod pages;
pub mod warc;

use std::cell::Cell;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::model::RawPage;
use pages::pages_from_bytes;
pub use pages::PageDefaults;
use warc::{WarcItem, WarcPages};

/// Names of the files a directory search picks up.
pub const DIRECTORY_FILE_SUFFIXES: &[&str] = &[
    ".txt", ".html", ".htm", ".json", ".jsonl", ".ndjson", ".warc", ".warc.gz",
];

/// Code of an input that cannot be opened or read at all (not of a page).
pub const UNREADABLE_INPUT: &str = "unreadable_input";

/// Code of a page file (or a whole input of one envelope) larger than [`max_read_bytes`] once
/// decompressed: it is not read on.
pub const INPUT_TOO_LARGE: &str = "input_too_large";

/// Code of a line of a JSON-lines input longer than [`max_read_bytes`]: skipped.
pub const LINE_TOO_LARGE: &str = "line_too_large";

/// The most bytes of an input held in memory at once, from `parse.max_page_bytes`: four times
/// it (room for a page of the maximum size escaped in JSON or wrapped in a WARC record), at
/// least 64 KiB. It bounds a page file or single envelope (after gzip decompression), each line
/// of JSON lines, and each WARC record (header lines and block); larger ones are reported as
/// failed, so that a small compressed input cannot fill memory.
pub fn max_read_bytes(max_page_bytes: usize) -> u64 {
    (max_page_bytes as u64).saturating_mul(4).max(64 * 1024)
}

/// One input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input.
    Stdin,
    /// A file.
    File {
        /// Its path.
        path: PathBuf,
        /// Its size in bytes when the search found it.
        size: u64,
    },
}

impl Input {
    /// How the input is named in messages.
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "stdin".to_owned(),
            Input::File { path, .. } => path.display().to_string(),
        }
    }
}

/// The total size of the inputs, when known (not for standard input).
pub fn total_size(inputs: &[Input]) -> Option<u64> {
    inputs
        .iter()
        .map(|input| match input {
            Input::File { size, .. } => Some(*size),
            Input::Stdin => None,
        })
        .sum()
}

/// Why the inputs could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A path given does not exist.
    #[error("input `{}` does not exist", .0.display())]
    NotFound(PathBuf),
    /// A path given cannot be read.
    #[error("input `{}` cannot be read: {}", .0.display(), .1)]
    Unreadable(PathBuf, std::io::Error),
    /// A directory given cannot be searched.
    #[error("directory `{}` cannot be read: {}", .0.display(), .1)]
    Directory(PathBuf, std::io::Error),
}

/// Expands paths into inputs: files as given, directories searched recursively (sorted; hidden
/// entries skipped; only [`DIRECTORY_FILE_SUFFIXES`]), `-` or no path for standard input.
pub fn collect_inputs(arguments: &[PathBuf]) -> Result<Vec<Input>, InputError> {
    if arguments.is_empty() {
        return Ok(vec![Input::Stdin]);
    }
    let mut inputs = Vec::new();
    for argument in arguments {
        if argument.as_os_str() == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let metadata = std::fs::metadata(argument).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => InputError::NotFound(argument.clone()),
            _ => InputError::Unreadable(argument.clone(), error),
        })?;
        if metadata.is_dir() {
            search_directory(argument, &mut inputs).map_err(|error| InputError::Directory(argument.clone(), error))?;
        } else {
            inputs.push(Input::File {
                path: argument.clone(),
                size: metadata.len(),
            });
        }
    }
    Ok(inputs)
}

fn search_directory(directory: &Path, inputs: &mut Vec<Input>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(directory)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        let metadata = std::fs::metadata(&path)?;
        if metadata.is_dir() {
            search_directory(&path, inputs)?;
        } else if DIRECTORY_FILE_SUFFIXES
            .iter()
            .any(|suffix| name.to_ascii_lowercase().ends_with(suffix))
        {
            inputs.push(Input::File {
                path,
                size: metadata.len(),
            });
        }
    }
    Ok(())
}

/// What an input yields, one at a time.
#[derive(Debug)]
pub enum Item {
    /// A page.
    Page(RawPage),
    /// Something that should have been a page but is not (code and message).
    Failed {
        /// Stable code (`invalid_envelope`, `warc_unreadable_record`, …).
        code: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A WARC record that is not a page (code of the reason).
    Skipped(&'static str),
}

/// Reads one input and hands every item to `each` with the input's name; `read_bytes` is told
/// how many bytes of the input (compressed, as stored) have been read so far. An input that
/// cannot be opened or read is reported as a failed item with code `unreadable_input`; no more
/// than [`max_read_bytes`]`(max_page_bytes)` of it is held at once. Stops at the first error
/// `each` returns.
pub fn read_input<E>(
    input: &Input,
    defaults: &PageDefaults,
    max_page_bytes: usize,
    read_bytes: &mut dyn FnMut(u64),
    each: &mut dyn FnMut(&str, Item) -> Result<(), E>,
) -> Result<(), E> {
    let name = input.name();
    let counter = Rc::new(Cell::new(0u64));
    let reader: Box<dyn Read> = match input {
        Input::Stdin => Box::new(Counting::new(std::io::stdin(), counter.clone())),
        Input::File { path, .. } => match std::fs::File::open(path) {
            Ok(file) => Box::new(Counting::new(file, counter.clone())),
            Err(error) => return each(&name, unreadable(&error)),
        },
    };
    let path = match input {
        Input::Stdin => None,
        Input::File { path, .. } => Some(path.as_path()),
    };
    match open_content(reader, max_read_bytes(max_page_bytes)) {
        Ok(Content::Warc(records)) => {
            for record in records {
                read_bytes(counter.get());
                let item = match record {
                    WarcItem::Page(page) => Item::Page(page),
                    WarcItem::Skipped(skip) => Item::Skipped(skip.code()),
                    WarcItem::Failed(error) => Item::Failed {
                        code: error.code(),
                        message: error.to_string(),
                    },
                };
                each(&name, item)?;
            }
        }
        Ok(Content::Bytes(bytes)) => {
            read_bytes(counter.get());
            for page in pages_from_bytes(&bytes, path, defaults) {
                each(&name, decoded(page))?;
            }
        }
        Ok(Content::JsonLines(lines)) => {
            for line in lines {
                read_bytes(counter.get());
                each(&name, line)?;
            }
        }
        Ok(Content::TooLarge(limit)) => each(
            &name,
            Item::Failed {
                code: INPUT_TOO_LARGE,
                message: format!("larger than {limit} bytes (4 × parse.max_page_bytes) and not JSON lines: not read"),
            },
        )?,
        Err(error) => each(&name, unreadable(&error))?,
    }
    read_bytes(counter.get());
    Ok(())
}

fn decoded(page: Result<RawPage, crate::envelope::DecodeError>) -> Item {
    match page {
        Ok(page) => Item::Page(page),
        Err(error) => Item::Failed {
            code: error.code(),
            message: error.to_string(),
        },
    }
}

fn unreadable(error: &std::io::Error) -> Item {
    Item::Failed {
        code: UNREADABLE_INPUT,
        message: error.to_string(),
    }
}

enum Content {
    Warc(WarcPages<Box<dyn Read>>),
    /// The whole input (at most the limit).
    Bytes(Vec<u8>),
    /// An input over the limit that starts like JSON: read a line at a time.
    JsonLines(JsonLines),
    /// An input over the limit (in bytes) that is neither WARC nor JSON lines.
    TooLarge(u64),
}

/// Decompresses gzip and tells WARC from everything else by the first bytes; reads at most
/// `limit` bytes into memory at once.
fn open_content(reader: Box<dyn Read>, limit: u64) -> std::io::Result<Content> {
    let (head, reader) = peek(reader, 2)?;
    let reader: Box<dyn Read> = if head == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let (head, reader) = peek(reader, 5)?;
    if warc::looks_like_warc(&head) {
        return Ok(Content::Warc(WarcPages::with_record_limit(Box::new(reader), limit)));
    }
    let mut reader = BufReader::new(reader);
    let mut bytes = Vec::new();
    (&mut reader).take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 <= limit {
        return Ok(Content::Bytes(bytes));
    }
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Ok(Content::TooLarge(limit));
    }
    let rest: Box<dyn BufRead> = Box::new(Cursor::new(bytes).chain(reader));
    Ok(Content::JsonLines(JsonLines { reader: rest, limit }))
}

/// The envelopes of a JSON-lines input, a line at a time; a line over `limit` bytes is reported
/// ([`LINE_TOO_LARGE`]) and skipped without holding it.
struct JsonLines {
    reader: Box<dyn BufRead>,
    limit: u64,
}

impl Iterator for JsonLines {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            let mut line = Vec::new();
            match (&mut self.reader).take(self.limit + 1).read_until(b'\n', &mut line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(error) => return Some(unreadable(&error)),
            }
            if line.len() as u64 > self.limit && line.last() != Some(&b'\n') {
                if let Err(error) = self.reader.skip_until(b'\n') {
                    return Some(unreadable(&error));
                }
                return Some(Item::Failed {
                    code: LINE_TOO_LARGE,
                    message: format!(
                        "a line longer than {} bytes (4 × parse.max_page_bytes): skipped",
                        self.limit
                    ),
                });
            }
            if !line.trim_ascii().is_empty() {
                return Some(decoded(crate::envelope::decode_message(
                    Some(line.trim_ascii_end()),
                    [],
                )));
            }
        }
    }
}

/// A stream with its first bytes put back in front.
type Replayed<R> = std::io::Chain<Cursor<Vec<u8>>, R>;

/// The first `wanted` bytes of a stream (fewer if it is shorter), and the whole stream again.
fn peek<R: Read>(mut reader: R, wanted: usize) -> std::io::Result<(Vec<u8>, Replayed<R>)> {
    let mut head = vec![0u8; wanted];
    let mut filled = 0;
    while filled < wanted {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    head.truncate(filled);
    Ok((head.clone(), Cursor::new(head).chain(reader)))
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R> Counting<R> {
    fn new(inner: R, count: Rc<Cell<u64>>) -> Self {
        Self { inner, count }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.count.set(self.count.get() + read as u64);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_inputs_are_usage_errors() {
        let error = collect_inputs(&[PathBuf::from("/nonexistent/page.txt")]).unwrap_err();
        assert_eq!(error.to_string(), "input `/nonexistent/page.txt` does not exist");
    }

    #[test]
    fn directories_are_searched_recursively_for_known_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for name in [
            "b.txt",
            "a.html",
            "sub/c.warc.gz",
            "README.md",
            ".hidden.txt",
            "sub/d.jsonl",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let names: Vec<String> = collect_inputs(&[dir.path().to_path_buf()])
            .unwrap()
            .iter()
            .map(|input| {
                input
                    .name()
                    .strip_prefix(&format!("{}/", dir.path().display()))
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(names, ["a.html", "b.txt", "sub/c.warc.gz", "sub/d.jsonl"]);
    }

    #[test]
    fn gzip_and_warc_are_recognised_by_content() {
        use std::io::Write as _;
        let record = "WARC/1.0\r\nWARC-Type: warcinfo\r\nWARC-Record-ID: <urn:uuid:1>\r\n\
                      WARC-Date: 2024-12-08T10:15:00Z\r\nContent-Length: 0\r\n\r\n\r\n\r\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(record.as_bytes()).unwrap();
        let compressed = gz.finish().unwrap();
        for bytes in [record.as_bytes().to_vec(), compressed] {
            match open_content(Box::new(std::io::Cursor::new(bytes)), 1 << 20).unwrap() {
                Content::Warc(mut records) => {
                    assert_eq!(records.next(), Some(WarcItem::Skipped(warc::Skip::NotAResponse)))
                }
                _ => panic!("not recognised as WARC"),
            }
        }
        assert!(matches!(
            open_content(Box::new(std::io::Cursor::new(b"AGL 1.0".to_vec())), 1 << 20).unwrap(),
            Content::Bytes(bytes) if bytes == b"AGL 1.0"
        ));
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    /// The items of one input file holding `bytes`, read with `max_page_bytes`.
    fn items(bytes: &[u8], max_page_bytes: usize) -> Vec<Item> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("input");
        std::fs::write(&path, bytes).unwrap();
        let input = Input::File {
            path,
            size: bytes.len() as u64,
        };
        let mut items = Vec::new();
        read_input::<()>(
            &input,
            &PageDefaults::default(),
            max_page_bytes,
            &mut |_| {},
            &mut |_, item| {
                items.push(item);
                Ok(())
            },
        )
        .unwrap();
        items
    }

    fn codes(items: &[Item]) -> Vec<&'static str> {
        items
            .iter()
            .map(|item| match item {
                Item::Page(_) => "page",
                Item::Failed { code, .. } => code,
                Item::Skipped(code) => code,
            })
            .collect()
    }

    #[test]
    fn a_gzip_bomb_is_not_read_past_the_limit() {
        // 8 MiB of text in ~8 KiB of gzip, against a limit of 4 × 64 KiB.
        let bomb = gzip(&vec![b'a'; 8 << 20]);
        assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
        let items = items(&bomb, 64 * 1024);
        assert_eq!(codes(&items), [INPUT_TOO_LARGE]);
        let Item::Failed { message, .. } = &items[0] else {
            unreachable!()
        };
        assert_eq!(
            message,
            "larger than 262144 bytes (4 × parse.max_page_bytes) and not JSON lines: not read"
        );
        // Under the limit, the same page is read.
        assert_eq!(codes(&self::items(&gzip(&vec![b'a'; 200_000]), 64 * 1024)), ["page"]);
        assert_eq!(max_read_bytes(4 << 20), 16 << 20);
        assert_eq!(max_read_bytes(1), 64 * 1024);
    }

    #[test]
    fn json_lines_over_the_limit_are_read_a_line_at_a_time() {
        let line = |n: usize| {
            let body = format!("AGL 37.94 line {n}");
            let mut line = crate::envelope::encode_envelope(
                &format!("https://example.com/{n}"),
                "2024-12-08T10:15:00Z".parse().unwrap(),
                "text/plain",
                &body,
            );
            line.push(b'\n');
            line
        };
        let mut lines: Vec<u8> = (0..3000).flat_map(line).collect();
        assert!(lines.len() > 4 * 64 * 1024, "{}", lines.len());
        // One line far over the limit, skipped; the lines after it are read.
        let mut long = b"{\"url\": \"".to_vec();
        long.extend(vec![b'x'; 1 << 20]);
        long.extend_from_slice(b"\"}\n");
        lines.splice(0..0, long);
        lines.extend(line(3000));
        let items = items(&gzip(&lines), 64 * 1024);
        let codes = codes(&items);
        assert_eq!(codes.len(), 3002);
        assert_eq!(codes[0], LINE_TOO_LARGE);
        assert!(codes[1..].iter().all(|code| *code == "page"), "{:?}", &codes[..5]);
        let Item::Page(last) = &items[3001] else { unreachable!() };
        assert_eq!(last.url, "https://example.com/3000");
    }
}

//! Normalized tar headers: ustar, with a PAX extended header in front when a path or link
//! target does not fit (or is not ASCII), a number is too large for its octal field, or the
//! entry carries extended attributes (`SCHILY.xattr.NAME`, as GNU tar and Docker write them).

const BLOCK: usize = 512;
/// Largest value of an 11-digit octal field (size, mtime).
const MAX_OCTAL_11: u64 = 0o777_7777_7777;
/// Largest value of a 7-digit octal field (uid, gid, devmajor, devminor).
const MAX_OCTAL_7: u64 = 0o777_7777;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Dir,
    Fifo,
}

impl Kind {
    fn typeflag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::HardLink => b'1',
            Kind::Symlink => b'2',
            Kind::CharDevice => b'3',
            Kind::BlockDevice => b'4',
            Kind::Dir => b'5',
            Kind::Fifo => b'6',
        }
    }
}

/// One entry's header(s): `name` is the archive path (directories end with `/`).
pub(crate) struct HeaderSpec<'a> {
    pub name: &'a str,
    pub link: &'a str,
    pub kind: Kind,
    pub mode: u32,
    pub size: u64,
    pub mtime: u64,
    /// Owner; 0 in normalized layers.
    pub uid: u64,
    pub gid: u64,
    /// Device numbers of a character or block device; 0 otherwise.
    pub device: (u32, u32),
    /// Extended attributes, written as `SCHILY.xattr.NAME` PAX records in the order given.
    pub xattrs: &'a [(String, Vec<u8>)],
}

impl<'a> HeaderSpec<'a> {
    /// A normalized entry: owned by 0:0, no device numbers, no extended attributes.
    pub fn normalized(
        name: &'a str,
        link: &'a str,
        kind: Kind,
        mode: u32,
        size: u64,
        mtime: u64,
    ) -> Self {
        HeaderSpec {
            name,
            link,
            kind,
            mode,
            size,
            mtime,
            uid: 0,
            gid: 0,
            device: (0, 0),
            xattrs: &[],
        }
    }
}

/// Appends the header blocks for `spec` to `out` (a PAX header first when needed).
pub(crate) fn encode(spec: &HeaderSpec<'_>, out: &mut Vec<u8>) {
    let split = split_ustar_name(spec.name);
    let link_fits = spec.link.is_ascii() && spec.link.len() <= 100;
    let mut records = Vec::new();
    if split.is_none() {
        pax_record(&mut records, "path", spec.name);
    }
    if !link_fits {
        pax_record(&mut records, "linkpath", spec.link);
    }
    if spec.size > MAX_OCTAL_11 {
        pax_record(&mut records, "size", &spec.size.to_string());
    }
    if spec.mtime > MAX_OCTAL_11 {
        pax_record(&mut records, "mtime", &spec.mtime.to_string());
    }
    if spec.uid > MAX_OCTAL_7 {
        pax_record(&mut records, "uid", &spec.uid.to_string());
    }
    if spec.gid > MAX_OCTAL_7 {
        pax_record(&mut records, "gid", &spec.gid.to_string());
    }
    for (name, value) in spec.xattrs {
        pax_record_bytes(&mut records, &format!("SCHILY.xattr.{name}"), value);
    }
    if !records.is_empty() {
        let pax_name = pax_header_name(spec.name);
        let pax = Ustar {
            prefix: "",
            name: &pax_name,
            link: "",
            typeflag: b'x',
            mode: 0o644,
            size: records.len() as u64,
            mtime: spec.mtime.min(MAX_OCTAL_11),
            uid: 0,
            gid: 0,
            device: (0, 0),
        };
        pax.encode(out);
        out.extend_from_slice(&records);
        pad(out);
    }
    let (prefix, name) = split.unwrap_or(("", truncate(spec.name, 100)));
    Ustar {
        prefix,
        name,
        link: if link_fits {
            spec.link
        } else {
            truncate(spec.link, 100)
        },
        typeflag: spec.kind.typeflag(),
        mode: spec.mode,
        size: if spec.size > MAX_OCTAL_11 {
            0
        } else {
            spec.size
        },
        mtime: spec.mtime.min(MAX_OCTAL_11),
        uid: if spec.uid > MAX_OCTAL_7 { 0 } else { spec.uid },
        gid: if spec.gid > MAX_OCTAL_7 { 0 } else { spec.gid },
        device: (
            u64::from(spec.device.0).min(MAX_OCTAL_7),
            u64::from(spec.device.1).min(MAX_OCTAL_7),
        ),
    }
    .encode(out);
}

/// Zero padding up to the next 512-byte boundary.
pub(crate) fn padding(len: u64) -> usize {
    (BLOCK - (len % BLOCK as u64) as usize) % BLOCK
}

fn pad(out: &mut Vec<u8>) {
    out.resize(out.len() + padding(out.len() as u64), 0);
}

/// Splits `name` into ustar's prefix (<= 155) and name (<= 100) at a `/`, if it is ASCII and
/// fits.
fn split_ustar_name(name: &str) -> Option<(&str, &str)> {
    if !name.is_ascii() {
        return None;
    }
    if name.len() <= 100 {
        return Some(("", name));
    }
    // The name part must be non-empty; a directory's trailing `/` stays with it.
    let searchable = name.strip_suffix('/').unwrap_or(name);
    searchable
        .rmatch_indices('/')
        .map(|(index, _)| index)
        .find(|&index| index <= 155 && name.len() - index - 1 <= 100)
        .map(|index| (&name[..index], &name[index + 1..]))
}

/// Go's archive/tar convention: `<dir>/PaxHeaders.0/<base>`, cut to 100 bytes.
fn pax_header_name(name: &str) -> String {
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    let (dir, base) = match trimmed.rfind('/') {
        Some(index) => (&trimmed[..=index], &trimmed[index + 1..]),
        None => ("", trimmed),
    };
    let full = format!("{dir}PaxHeaders.0/{base}");
    let ascii: String = full
        .chars()
        .map(|c| if c.is_ascii() { c } else { '_' })
        .collect();
    truncate(&ascii, 100).to_owned()
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A PAX record: `"<len> <key>=<value>\n"`, where `<len>` counts itself.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &str) {
    pax_record_bytes(out, key, value.as_bytes());
}

/// A PAX record with a binary value (an extended attribute's bytes).
fn pax_record_bytes(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while body + len.to_string().len() != len {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

struct Ustar<'a> {
    prefix: &'a str,
    name: &'a str,
    link: &'a str,
    typeflag: u8,
    mode: u32,
    size: u64,
    mtime: u64,
    uid: u64,
    gid: u64,
    device: (u64, u64),
}

impl Ustar<'_> {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut block = [0u8; BLOCK];
        put(&mut block[0..100], self.name.as_bytes());
        octal(&mut block[100..108], u64::from(self.mode));
        octal(&mut block[108..116], self.uid);
        octal(&mut block[116..124], self.gid);
        octal(&mut block[124..136], self.size);
        octal(&mut block[136..148], self.mtime);
        block[148..156].fill(b' ');
        block[156] = self.typeflag;
        put(&mut block[157..257], self.link.as_bytes());
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        // uname, gname: empty.
        octal(&mut block[329..337], self.device.0);
        octal(&mut block[337..345], self.device.1);
        put(&mut block[345..500], self.prefix.as_bytes());
        let checksum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        let digits = format!("{checksum:06o}\0 ");
        block[148..156].copy_from_slice(digits.as_bytes());
        out.extend_from_slice(&block);
    }
}

fn put(field: &mut [u8], value: &[u8]) {
    field[..value.len()].copy_from_slice(value);
}

/// Zero-padded octal digits filling the field but its last byte, which stays NUL.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let digits = format!("{value:0width$o}");
    field[..width].copy_from_slice(digits.as_bytes());
    field[width] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for value in ["", "a", &"x".repeat(90), &"y".repeat(95), &"z".repeat(1000)] {
            let mut out = Vec::new();
            pax_record(&mut out, "path", value);
            let text = String::from_utf8(out).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), text.len(), "{text}");
        }
    }

    #[test]
    fn long_names_split_at_a_slash_or_go_to_pax() {
        let long_dir = format!("{}/{}", "d".repeat(120), "f".repeat(50));
        assert_eq!(
            split_ustar_name(&long_dir),
            Some((&long_dir[..120], &long_dir[121..]))
        );
        assert_eq!(split_ustar_name(&"a".repeat(101)), None);
        assert_eq!(split_ustar_name("caf\u{e9}"), None);
        let dir = format!("{}/{}/", "d".repeat(120), "e".repeat(99));
        assert_eq!(split_ustar_name(&dir), Some((&dir[..120], &dir[121..])));
    }

    #[test]
    fn pax_header_names_follow_go() {
        assert_eq!(pax_header_name("usr/lib/x"), "usr/lib/PaxHeaders.0/x");
        assert_eq!(pax_header_name("x/"), "PaxHeaders.0/x");
    }
}

//! The bytes of a spool segment and of its dead-record list.
//!
//! Segment `<id>.seg`: the 8-byte magic `FWSPOOL1`, then records:
//!
//! ```text
//! len: u32 LE | crc: u32 LE | payload: len bytes
//! payload = kind: u8 | seq: u64 LE | boot_len: u8 | boot_id | body
//! ```
//!
//! `crc` is CRC-32 (crc32fast) over `len` and the payload, so a damaged
//! length is caught as surely as damaged data. `body` is opaque here (the
//! outbox stores an encoded `forewarn.v1.Report`).
//!
//! Dead list `<id>.ack`: u32 LE record indexes (0 = first record of the
//! segment) that were acknowledged or dropped. A torn last entry (fewer than
//! 4 bytes) is ignored.

use super::Kind;

/// First bytes of every segment; the digit is the format version.
pub const MAGIC: &[u8; 8] = b"FWSPOOL1";
/// `len` + `crc`.
pub const RECORD_HEADER: usize = 8;
/// A larger `len` is damage, not a record (reports are far smaller: the
/// collector refuses messages above a few MiB).
pub const MAX_PAYLOAD: usize = 16 << 20;

/// `<id>.seg`, `<id>.ack`, `<id>.tmp`: zero-padded so names sort by id.
pub fn file_name(id: u64, ext: &str) -> String {
    format!("{id:020}.{ext}")
}

/// The id of a file named by [`file_name`] with extension `ext`.
pub fn parse_name(name: &str, ext: &str) -> Option<u64> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// One record, ready to append (header included).
pub fn encode(kind: Kind, seq: u64, boot_id: &str, body: &[u8]) -> Vec<u8> {
    // Boot ids are UUIDs; a longer one is cut rather than refused, which
    // would break the spool's bookkeeping (it is never longer in practice).
    let boot = &boot_id.as_bytes()[..boot_id.len().min(usize::from(u8::MAX))];
    let payload_len = 1 + 8 + 1 + boot.len() + body.len();
    let mut out = Vec::with_capacity(RECORD_HEADER + payload_len);
    let len = u32::try_from(payload_len).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&[0; 4]);
    out.push(kind as u8);
    out.extend_from_slice(&seq.to_le_bytes());
    out.push(u8::try_from(boot.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(boot);
    out.extend_from_slice(body);
    let crc = checksum(&len, &out[RECORD_HEADER..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

fn checksum(len: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len);
    h.update(payload);
    h.finalize()
}

/// A record's decoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub kind: Kind,
    pub seq: u64,
    pub boot_id: &'a str,
    pub body: &'a [u8],
}

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// Fewer bytes left than the header or the length says: a torn write.
    Truncated,
    /// A length no record has.
    BadLength,
    /// Checksum mismatch.
    BadChecksum,
    /// Checksum fine, payload malformed (a bug or a foreign writer).
    BadPayload,
}

impl Damage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::BadLength => "bad length",
            Self::BadChecksum => "bad checksum",
            Self::BadPayload => "bad payload",
        }
    }
}

/// Decodes the record at the start of `bytes`; `Ok((record, total_len))`.
pub fn decode(bytes: &[u8]) -> Result<(Record<'_>, usize), Damage> {
    let header = bytes.get(..RECORD_HEADER).ok_or(Damage::Truncated)?;
    let (len_bytes, crc_bytes) = header.split_at(4);
    let len = u32::from_le_bytes(len_bytes.try_into().map_err(|_| Damage::Truncated)?) as usize;
    if !(10..=MAX_PAYLOAD).contains(&len) {
        return Err(Damage::BadLength);
    }
    let payload = bytes
        .get(RECORD_HEADER..RECORD_HEADER + len)
        .ok_or(Damage::Truncated)?;
    let crc = u32::from_le_bytes(crc_bytes.try_into().map_err(|_| Damage::Truncated)?);
    if checksum(len_bytes, payload) != crc {
        return Err(Damage::BadChecksum);
    }
    let record = decode_payload(payload).ok_or(Damage::BadPayload)?;
    Ok((record, RECORD_HEADER + len))
}

fn decode_payload(p: &[u8]) -> Option<Record<'_>> {
    let (&kind, rest) = p.split_first()?;
    let kind = Kind::from_u8(kind)?;
    let (seq, rest) = rest.split_at_checked(8)?;
    let seq = u64::from_le_bytes(seq.try_into().ok()?);
    let (&boot_len, rest) = rest.split_first()?;
    let (boot, body) = rest.split_at_checked(usize::from(boot_len))?;
    let boot_id = std::str::from_utf8(boot).ok()?;
    Some(Record {
        kind,
        seq,
        boot_id,
        body,
    })
}

/// One readable record found by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub offset: u64,
    pub len: u32,
    pub kind: Kind,
    pub seq: u64,
    pub boot_id: String,
}

/// What a whole segment file holds.
#[derive(Debug, Default)]
pub struct Scan {
    pub records: Vec<Found>,
    /// Bytes up to the end of the last good record (where appends may go on).
    pub valid_len: u64,
    /// The first bad record, if any: its offset and why. Nothing after it is
    /// read (a damaged length leaves no way to find the next record).
    pub damage: Option<(u64, Damage)>,
    /// False if the file does not start with [`MAGIC`] (or a torn prefix of it).
    pub has_magic: bool,
}

/// Reads every record of a segment file's contents.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut scan = Scan::default();
    if !bytes.starts_with(MAGIC) {
        return scan;
    }
    scan.has_magic = true;
    let mut offset = MAGIC.len();
    scan.valid_len = offset as u64;
    while offset < bytes.len() {
        match decode(&bytes[offset..]) {
            Ok((r, len)) => {
                scan.records.push(Found {
                    offset: offset as u64,
                    len: u32::try_from(len).unwrap_or(u32::MAX),
                    kind: r.kind,
                    seq: r.seq,
                    boot_id: r.boot_id.to_owned(),
                });
                offset += len;
                scan.valid_len = offset as u64;
            }
            Err(damage) => {
                scan.damage = Some((offset as u64, damage));
                break;
            }
        }
    }
    scan
}

/// Record indexes listed in a dead-list file's contents.
pub fn dead_indexes(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(4)
        .filter_map(|c| c.try_into().ok().map(u32::from_le_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips() {
        let bytes = encode(Kind::StateChange, 42, "boot-a", b"body");
        let (r, len) = decode(&bytes).expect("decodes");
        assert_eq!(len, bytes.len());
        assert_eq!(
            r,
            Record {
                kind: Kind::StateChange,
                seq: 42,
                boot_id: "boot-a",
                body: b"body",
            }
        );
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let bytes = encode(Kind::Heartbeat, 7, "b", b"0123456789");
        for i in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(decode(&bad).is_err(), "bit {i} flipped went unnoticed");
        }
    }

    #[test]
    fn names_sort_by_id_and_parse_back() {
        assert_eq!(parse_name(&file_name(12, "seg"), "seg"), Some(12));
        assert_eq!(parse_name(&file_name(12, "ack"), "seg"), None);
        assert_eq!(parse_name("12.seg", "seg"), None);
        assert!(file_name(9, "seg") < file_name(10, "seg"));
    }

    #[test]
    fn torn_dead_list_entry_is_ignored() {
        let bytes = [1, 0, 0, 0, 2, 0];
        assert_eq!(dead_indexes(&bytes).collect::<Vec<_>>(), [1]);
    }
}

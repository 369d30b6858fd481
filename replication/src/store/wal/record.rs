//! How the WAL lays out a segment and its records, and how it tells a torn write from damage.
//!
//! ```text
//!   segment (format 2) = SEGMENT_HEADER | record* | zeros (reserved space, never written)
//!   record  (format 2) = tag u8 | len u32 | crc32 u32 | shard u32 | index u64 | body' | tag u8
//!            tag = TAG_BASE | kind        len counts what follows the crc
//!            crc covers the leading tag and what follows the crc
//!            body' = the body XOR a keystream seeded by (kind, shard, index)
//!
//!   segment (format 1) = record*  (no header: builds before 2026-12-07; read, never written)
//!   record  (format 1) = len u32 | crc32 u32 | kind u8 | shard u32 | index u64 | body
//! ```
//!
//! A record that does not parse ends the log. In the last segment it may be a write torn by a
//! crash, and is cut, only if it looks torn: a disk writes whole sectors and a segment's space is
//! reserved as zeros, so a torn record has a sector that reads as zeros from where the record
//! enters it to the sector's end, or the file ends inside it ([`may_be_torn`]). Anything else is
//! damage to a record that was synced (perhaps an acknowledged entry, perhaps a vote), and the
//! node refuses to start rather than forget it.
//!
//! That line holds only if no single flipped bit can make a written sector read as zeros where
//! the record is, which is why format 2 exists. Invariant: every sector a record touches holds at
//! least two set bits of the record's own bytes. The sector where it starts has its leading tag,
//! the sector where it ends its trailing tag (each has at least three bits set), and a sector in
//! between is covered by the body, which is scrambled so that zeros in a value (a value of 512
//! zero bytes, a vote that ends in `false`) are not zeros on the disk: such a sector holds 512
//! bytes of keystream, and fewer than two set bits in them has odds of about 2^-4000 (a value
//! crafted to equal the keystream would need its shard and log index). In format 1 a flip that
//! cleared the only set bit of the last record's part in its last sector read as a tear and the
//! record was cut (chaos seed 349 with `--duplicate-calls 3 --duplicate-late-ms 200`).
//!
//! The segment header tells the formats apart: a format 1 segment starts with a length field no
//! greater than [`RECORD_BYTES_MAX`], which the header's first four bytes, read as one, exceed
//! even with one bit flipped; a header one bit away from [`SEGMENT_HEADER`] is damage.

use std::borrow::Cow;

/// What a record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// A log entry at `index`.
    Entry = 1,
    /// Entries from `index` on are dropped.
    Truncate = 2,
    /// Entries up to `index` are purged.
    Purge = 3,
    /// The vote.
    Vote = 4,
    /// The committed log id.
    Committed = 5,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Entry,
            2 => Kind::Truncate,
            3 => Kind::Purge,
            4 => Kind::Vote,
            5 => Kind::Committed,
            _ => return None,
        })
    }
}

/// A record longer than this is corruption (an entry holds one command, far smaller).
pub const RECORD_BYTES_MAX: usize = 256 << 20;
/// The unit a disk writes atomically (the smallest sector there is): a crash tears a write
/// between sectors, never inside one.
pub const SECTOR_BYTES: usize = 512;
/// The first bytes of a format 2 segment: a byte with the high bit set (not text), a name, a
/// stop byte, the format. Read as a little-endian u32, the first four exceed
/// [`RECORD_BYTES_MAX`] whichever one bit is flipped, so no format 1 segment starts like it.
/// A later format keeps the first seven bytes and takes a last byte at least two bits away from
/// every earlier one (0x05, not 0x03), so that one flipped bit still reads as damage.
pub const SEGMENT_HEADER: [u8; 8] = *b"\x89KVWAL\x1a\x02";
/// A format 2 record's tags are this with the kind in the low bits: never zero, and never zero
/// with one bit flipped.
const TAG_BASE: u8 = 0xa0;
/// Bytes of a record before its body (both formats).
pub const HEADER_BYTES: usize = 21;

/// How a segment's records are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// No segment header, no tags, the body as is (builds before 2026-12-07).
    V1,
    /// [`SEGMENT_HEADER`], tags around each record, the body scrambled: what this build writes.
    V2,
}

/// A record parsed in place.
pub struct Record<'a> {
    pub kind: Kind,
    pub shard: u32,
    pub index: u64,
    /// The body as stored (scrambled in format 2): see [`Record::body`].
    stored: &'a [u8],
    format: Format,
    /// The record's whole length.
    pub len: usize,
}

impl<'a> Record<'a> {
    /// The body as it was pushed.
    pub fn body(&self) -> Cow<'a, [u8]> {
        match self.format {
            Format::V1 => Cow::Borrowed(self.stored),
            Format::V2 => {
                let mut body = self.stored.to_vec();
                scramble(&mut body, self.kind, self.shard, self.index);
                Cow::Owned(body)
            }
        }
    }
}

/// What [`Format::parse_in_place`] gives: the record's kind and where its body is.
pub struct PlainRecord {
    pub kind: Kind,
    pub body: std::ops::Range<usize>,
}

impl Format {
    /// Where the length field is; the crc follows it, and what the length counts follows that.
    fn len_at(self) -> usize {
        match self {
            Format::V1 => 0,
            Format::V2 => 1,
        }
    }

    /// Where what the length counts starts.
    fn counted_from(self) -> usize {
        self.len_at() + 8
    }

    /// The least a length field can say: the fixed fields after the crc.
    fn len_min(self) -> usize {
        match self {
            Format::V1 => HEADER_BYTES - 8,
            Format::V2 => HEADER_BYTES - 9 + 1,
        }
    }

    /// Whether `len` is a length field a record can have.
    fn is_len(self, len: usize) -> bool {
        (self.len_min()..=RECORD_BYTES_MAX).contains(&len)
    }

    /// The length and crc fields at the start of `bytes`.
    fn fields(self, bytes: &[u8]) -> Option<(usize, u32)> {
        let at = self.len_at();
        let len = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
        let crc = u32::from_le_bytes(bytes.get(at + 4..at + 8)?.try_into().ok()?);
        Some((len, crc))
    }

    /// The crc of the record at the start of `bytes` if its length field said `len`; `None` if
    /// `bytes` ends before that.
    fn crc_with(self, bytes: &[u8], len: usize) -> Option<u32> {
        let counted = bytes.get(self.counted_from()..self.counted_from() + len)?;
        Some(match self {
            Format::V1 => crc32fast::hash(counted),
            Format::V2 => {
                let mut hasher = crc32fast::Hasher::new();
                hasher.update(&bytes[..1]);
                hasher.update(counted);
                hasher.finalize()
            }
        })
    }

    /// Appends a record to `buf`; returns its length.
    pub fn push(self, buf: &mut Vec<u8>, kind: Kind, shard: u32, index: u64, body: &[u8]) -> usize {
        let start = buf.len();
        let len = self.len_min() + body.len();
        // The configuration caps what one entry can hold far below this (server::config::
        // WRITE_BYTES_LIMIT); a longer record would read back as torn.
        assert!(len <= RECORD_BYTES_MAX, "a WAL record of {len} bytes");
        let tag = TAG_BASE | kind as u8;
        if self == Format::V2 {
            buf.push(tag);
        }
        buf.extend_from_slice(&(len as u32).to_le_bytes());
        buf.extend_from_slice(&[0; 4]);
        if self == Format::V1 {
            buf.push(kind as u8);
        }
        buf.extend_from_slice(&shard.to_le_bytes());
        buf.extend_from_slice(&index.to_le_bytes());
        let body_at = buf.len();
        buf.extend_from_slice(body);
        if self == Format::V2 {
            scramble(&mut buf[body_at..], kind, shard, index);
            buf.push(tag);
        }
        let crc = self.crc_with(&buf[start..], len).expect("the record just laid out");
        let crc_at = start + self.len_at() + 4;
        buf[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(buf.len() - start, self.counted_from() + len);
        buf.len() - start
    }

    /// Parses the record at the start of `bytes`; `None` if it is cut short, fails its crc, or
    /// is not a record.
    pub fn parse(self, bytes: &[u8]) -> Option<Record<'_>> {
        let (len, crc) = self.fields(bytes.get(..HEADER_BYTES)?)?;
        if !self.is_len(len) || self.crc_with(bytes, len)? != crc {
            return None;
        }
        let end = self.counted_from() + len;
        let (kind, fixed_at, stored) = match self {
            Format::V1 => (bytes[8], 9, &bytes[HEADER_BYTES..end]),
            Format::V2 => {
                let (tag, trailer) = (bytes[0], bytes[end - 1]);
                if tag != trailer || tag & !0x0f != TAG_BASE {
                    return None;
                }
                (tag & 0x0f, 5 + 4, &bytes[HEADER_BYTES..end - 1])
            }
        };
        let kind = Kind::from_byte(kind)?;
        let shard = u32::from_le_bytes(bytes[fixed_at..fixed_at + 4].try_into().ok()?);
        let index = u64::from_le_bytes(bytes[fixed_at + 4..fixed_at + 12].try_into().ok()?);
        Some(Record { kind, shard, index, stored, format: self, len: end })
    }

    /// Parses the record that `bytes` holds and leaves its body there as it was pushed (a
    /// reader's own copy of a record: no second copy of the body).
    pub fn parse_in_place(self, bytes: &mut [u8]) -> Option<PlainRecord> {
        let record = self.parse(bytes)?;
        let (kind, shard, index) = (record.kind, record.shard, record.index);
        let body = HEADER_BYTES..HEADER_BYTES + record.stored.len();
        if self == Format::V2 {
            scramble(&mut bytes[body.clone()], kind, shard, index);
        }
        Some(PlainRecord { kind, body })
    }

    /// Whether the record that does not parse at `offset` of `segment` may be a write torn by a
    /// crash: it is cut short by the end of the file, or one of the sectors it covers reads as
    /// zeros (never written) from where the record enters it to the sector's end. Its extent is
    /// what its length field says, or its header if that length is not one a record can have
    /// (a torn header has zeros there too). A sector is judged to its end, past the record: an
    /// unwritten sector is zeros after the record too, where a written one may hold the next
    /// records (in format 1 a record's own bytes may be zeros; format 2's invariant rules that
    /// out).
    ///
    /// A length field with one bit flipped could point past the record's end, into the zeros
    /// after the log or past the file: so first, if the length with one of its bits flipped
    /// makes the crc match, the record is whole and its length is damaged.
    pub fn may_be_torn(self, segment: &[u8], offset: usize) -> bool {
        let rest = &segment[offset..];
        let Some((len, crc)) = rest.get(..HEADER_BYTES).and_then(|header| self.fields(header))
        else {
            return true;
        };
        let whole_with = |len: usize| self.is_len(len) && self.crc_with(rest, len) == Some(crc);
        if (0..u32::BITS).any(|bit| whole_with(len ^ (1 << bit))) {
            return false;
        }
        let extent = if self.is_len(len) { self.counted_from() + len } else { HEADER_BYTES };
        if extent > rest.len() {
            return true;
        }
        let (mut start, end) = (offset, offset + extent);
        while start < end {
            let sector_end = ((start / SECTOR_BYTES + 1) * SECTOR_BYTES).min(segment.len());
            if segment[start..sector_end].iter().all(|&byte| byte == 0) {
                return true;
            }
            start = sector_end;
        }
        false
    }
}

/// Why a segment's start cannot be read.
#[derive(Debug, PartialEq, Eq)]
pub enum BadStart {
    /// Damage: a flipped bit in the header, or neither format's start.
    Damaged(String),
    /// The header of a format this build does not know (a later build's).
    Unknown(u8),
}

/// The format of a segment from its first bytes, and where its records start. A segment whose
/// first bytes are zeros is of this build's format with no record (its header was never
/// written: a crash as the segment was started, or an empty file), and its records are judged
/// from offset 0, so that such a segment anywhere but last is refused as a bad record.
pub fn segment_format(bytes: &[u8]) -> Result<(Format, usize), BadStart> {
    let head = &bytes[..bytes.len().min(SEGMENT_HEADER.len())];
    if head == SEGMENT_HEADER {
        return Ok((Format::V2, SEGMENT_HEADER.len()));
    }
    if head.iter().all(|&byte| byte == 0) {
        return Ok((Format::V2, 0));
    }
    let differing: u32 =
        head.iter().zip(SEGMENT_HEADER).map(|(byte, want)| (byte ^ want).count_ones()).sum();
    if head.len() == SEGMENT_HEADER.len() && differing == 1 {
        return Err(BadStart::Damaged("its header has a flipped bit".into()));
    }
    let name = &SEGMENT_HEADER[..SEGMENT_HEADER.len() - 1];
    if head.len() == SEGMENT_HEADER.len() && head.starts_with(name) {
        return Err(BadStart::Unknown(head[SEGMENT_HEADER.len() - 1]));
    }
    let v1_len =
        head.get(..4).map(|four| u32::from_le_bytes(four.try_into().expect("four bytes")) as usize);
    match v1_len {
        Some(len) if Format::V1.is_len(len) => Ok((Format::V1, 0)),
        _ => Err(BadStart::Damaged(format!("it starts with {head:02x?}, neither format's start"))),
    }
}

/// XORs `bytes` with a keystream (splitmix64) seeded by the record's kind, shard and index: its
/// own inverse. What a value holds is not what the disk holds, so a run of zeros in a value is
/// not a run of zeros in the segment (the invariant above); the seed differs between records, so
/// no one value is zeros on the disk wherever it is written.
fn scramble(bytes: &mut [u8], kind: Kind, shard: u32, index: u64) {
    let mut state = index.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ u64::from(shard).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
        ^ kind as u64;
    for chunk in bytes.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut key = state;
        key = (key ^ (key >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        key = (key ^ (key >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        key ^= key >> 31;
        for (byte, key) in chunk.iter_mut().zip(key.to_le_bytes()) {
            *byte ^= key;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_any_cut_or_flip_is_caught() {
        for format in [Format::V1, Format::V2] {
            for body in [&b""[..], b"body", &[0; 700]] {
                let mut buf = Vec::new();
                let len = format.push(&mut buf, Kind::Vote, 3, 9, body);
                assert_eq!(len, buf.len());
                let record = format.parse(&buf).expect("parses");
                assert_eq!((record.kind, record.shard, record.index), (Kind::Vote, 3, 9));
                assert_eq!((&*record.body(), record.len), (body, len), "{format:?}");
                for cut in 0..buf.len() {
                    assert!(format.parse(&buf[..cut]).is_none(), "{format:?} cut at {cut}");
                }
                for at in 0..buf.len() {
                    for bit in 0..8 {
                        let mut damaged = buf.clone();
                        damaged[at] ^= 1 << bit;
                        assert!(format.parse(&damaged).is_none(), "{format:?} bit {bit} at {at}");
                    }
                }
            }
        }
    }

    /// The invariant of format 2, checked directly: wherever a record starts in a sector and
    /// whatever its body (zeros included), every sector it touches holds at least two set bits
    /// of it, so no one flipped bit leaves a written sector reading as zeros where it is.
    #[test]
    fn every_sector_a_record_touches_holds_two_set_bits_of_it() {
        let bodies: Vec<Vec<u8>> = [0, 1, 2, 9, 100, 511, 512, 513, 1500]
            .into_iter()
            .flat_map(|len| [vec![0; len], vec![0xff; len], (0..len).map(|i| i as u8).collect()])
            .collect();
        for body in &bodies {
            for kind in [Kind::Entry, Kind::Truncate, Kind::Purge, Kind::Vote, Kind::Committed] {
                for start in 0..SECTOR_BYTES {
                    let mut buf = vec![0; start];
                    Format::V2.push(&mut buf, kind, 0, 0, body);
                    for sector in buf.chunks(SECTOR_BYTES) {
                        let own =
                            if sector.as_ptr() == buf.as_ptr() { &sector[start..] } else { sector };
                        let bits: u32 = own.iter().map(|byte| byte.count_ones()).sum();
                        if !own.is_empty() {
                            assert!(bits >= 2, "{kind:?} at {start}, body {} bytes", body.len());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_segment_start_tells_the_format_or_damage() {
        let start = |bytes: &[u8]| segment_format(bytes);
        assert_eq!(start(&SEGMENT_HEADER), Ok((Format::V2, SEGMENT_HEADER.len())));
        assert_eq!(start(&[]), Ok((Format::V2, 0)), "an empty file");
        assert_eq!(start(&[0; 64]), Ok((Format::V2, 0)), "a header never written");
        let mut v1 = Vec::new();
        Format::V1.push(&mut v1, Kind::Vote, 0, 0, b"vote");
        assert_eq!(start(&v1), Ok((Format::V1, 0)));
        for at in 0..SEGMENT_HEADER.len() {
            for bit in 0..8 {
                let mut header = SEGMENT_HEADER;
                header[at] ^= 1 << bit;
                let first = u32::from_le_bytes(header[..4].try_into().expect("four")) as usize;
                assert!(first > RECORD_BYTES_MAX, "no format 1 length is one flip away");
                let error = start(&header).expect_err("a damaged header");
                assert_eq!(error, BadStart::Damaged("its header has a flipped bit".into()));
            }
        }
        assert!(matches!(start(&[0xff; 8]), Err(BadStart::Damaged(_))), "neither format");
        let mut later = SEGMENT_HEADER;
        later[7] = 0x05;
        assert_eq!(start(&later), Err(BadStart::Unknown(5)), "a later build's format");
    }
}

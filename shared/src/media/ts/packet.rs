//! The 188-byte transport packet (ISO/IEC 13818-1 §2.4.3.2–2.4.3.5): the one place that
//! reads the 4-byte header and the adaptation field. Segment analysis, the PES demuxer
//! and the timestamp shifter all read packets through [`packets`], [`Packet::parse`] or
//! [`Header::read`].

use super::TsError;

/// Size of one transport stream packet.
pub const PACKET_SIZE: usize = 188;
pub(crate) const SYNC_BYTE: u8 = 0x47;

/// One whole transport packet.
pub(crate) type RawPacket = [u8; PACKET_SIZE];

/// What the header and adaptation field of one packet say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) pid: u16,
    /// `payload_unit_start_indicator`: a PES packet or a PSI section starts here.
    pub(crate) unit_start: bool,
    /// `adaptation_field_control` says the packet has a payload.
    pub(crate) has_payload: bool,
    /// The adaptation field's `random_access_indicator`.
    pub(crate) random_access: bool,
    /// The adaptation field carries a PCR (bytes 6..12 of the packet).
    pub(crate) pcr: bool,
    /// Where the payload starts, when there is one and the adaptation field leaves room.
    pub(crate) payload_start: Option<usize>,
}

impl Header {
    /// Reads the header of `packet` (the sync byte is not checked here).
    #[inline]
    pub(crate) fn read(packet: &RawPacket) -> Header {
        let control = (packet[3] >> 4) & 3;
        let has_payload = control & 1 != 0;
        let (mut random_access, mut pcr, mut start) = (false, false, 4);
        if control & 2 != 0 {
            let len = usize::from(packet[4]);
            if len > 0 {
                random_access = packet[5] & 0x40 != 0;
                pcr = len >= 7 && packet[5] & 0x10 != 0;
            }
            start += 1 + len;
        }
        Header {
            pid: pid(packet[1], packet[2]),
            unit_start: packet[1] & 0x40 != 0,
            has_payload,
            random_access,
            pcr,
            payload_start: (has_payload && start < PACKET_SIZE).then_some(start),
        }
    }
}

/// One packet of a TS buffer, read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Packet<'a> {
    /// Byte offset of the packet in the buffer.
    pub(crate) offset: usize,
    pub(crate) header: Header,
    /// The payload bytes (never empty), when the packet has any.
    pub(crate) payload: Option<&'a [u8]>,
}

impl<'a> Packet<'a> {
    /// Reads the packet at `offset` of its buffer.
    #[inline]
    pub(crate) fn read(offset: usize, packet: &'a RawPacket) -> Packet<'a> {
        let header = Header::read(packet);
        Packet {
            offset,
            header,
            payload: header.payload_start.map(|start| &packet[start..]),
        }
    }

    /// Reads `bytes` as the packet at `offset`: an error when they do not start with the
    /// sync byte, `None` when they are a truncated packet (which carries nothing usable).
    #[inline]
    pub(crate) fn parse(offset: usize, bytes: &'a [u8]) -> Result<Option<Packet<'a>>, TsError> {
        match bytes.first() {
            Some(&SYNC_BYTE) => Ok(bytes.first_chunk().map(|raw| Packet::read(offset, raw))),
            found => Err(TsError::NoSync {
                offset,
                found: found.copied().unwrap_or(0),
            }),
        }
    }
}

/// The PID in a 13-bit PID field: the low five bits of `high`, then `low`.
#[inline]
pub(crate) fn pid(high: u8, low: u8) -> u16 {
    (u16::from(high & 0x1f) << 8) | u16::from(low)
}

/// The packets of a TS buffer in order. A packet that does not start with the sync byte
/// is an error and ends the walk; so does a truncated last packet.
pub(crate) fn packets(data: &[u8]) -> Packets<'_> {
    Packets {
        chunks: data.chunks(PACKET_SIZE),
        offset: 0,
    }
}

/// The iterator of [`packets`].
pub(crate) struct Packets<'a> {
    chunks: std::slice::Chunks<'a, u8>,
    offset: usize,
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<Packet<'a>, TsError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let read = Packet::parse(self.offset, self.chunks.next()?);
        self.offset += PACKET_SIZE;
        if !matches!(read, Ok(Some(_))) {
            self.chunks = [].chunks(PACKET_SIZE);
        }
        read.transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(bytes: &[u8]) -> RawPacket {
        let mut p = [0xff; PACKET_SIZE];
        p[..bytes.len()].copy_from_slice(bytes);
        p
    }

    #[test]
    fn header_fields_per_iso_13818_1() {
        // Payload only, unit start, PID 0x1fff.
        let h = Header::read(&packet(&[0x47, 0x5f, 0xff, 0x10]));
        assert_eq!((h.pid, h.unit_start, h.payload_start), (0x1fff, true, Some(4)));
        // Adaptation field of 7 bytes with the random-access and PCR flags, then payload.
        let h = Header::read(&packet(&[0x47, 0x01, 0x00, 0x30, 7, 0x50]));
        assert_eq!(
            (h.pid, h.unit_start, h.random_access, h.pcr),
            (0x100, false, true, true)
        );
        assert_eq!(h.payload_start, Some(12));
        // A PCR flag in a field too short to hold one is not a PCR.
        assert!(!Header::read(&packet(&[0x47, 0, 0, 0x30, 6, 0x10])).pcr);
        // Adaptation field only, or one that fills the packet: no payload.
        let h = Header::read(&packet(&[0x47, 0, 0, 0x20, 183, 0x40]));
        assert_eq!((h.has_payload, h.random_access, h.payload_start), (false, true, None));
        let h = Header::read(&packet(&[0x47, 0, 0, 0x30, 183, 0]));
        assert_eq!((h.has_payload, h.payload_start), (true, None));
    }

    #[test]
    fn walking_stops_at_lost_sync_and_at_a_truncated_packet() {
        let mut data = [packet(&[0x47, 0, 0, 0x10]), packet(&[0x47, 0, 0x11, 0x10])].concat();
        data.extend_from_slice(&[0x47, 0, 0]);
        let walked: Vec<_> = packets(&data).map(|p| p.map(|p| (p.offset, p.header.pid))).collect();
        assert_eq!(walked, [Ok((0, 0)), Ok((188, 0x11))]);
        data[188] = 0x46;
        let walked: Vec<_> = packets(&data).map(|p| p.map(|p| p.offset)).collect();
        assert_eq!(
            walked,
            [
                Ok(0),
                Err(TsError::NoSync {
                    offset: 188,
                    found: 0x46
                })
            ]
        );
        assert_eq!(packets(&[]).count(), 0);
    }
}

//! Property tests: whatever messages are sent and however the byte stream
//! is cut into reads, the framing gives back exactly the messages sent;
//! startup packets round-trip through the builder and the parser; bad
//! length fields are errors, never panics.

use bytes::BytesMut;
use proptest::prelude::*;
use sluice_protocol::builders;
use sluice_protocol::startup::{parse_startup, take_startup};
use sluice_protocol::{take_message, ProtocolError, StartupPacket};

fn encode(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

proptest! {
    #[test]
    fn messages_survive_any_split_of_the_stream(
        msgs in prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 0..300)), 0..20),
        cuts in prop::collection::vec(1usize..64, 0..40),
    ) {
        let stream: Vec<u8> = msgs.iter().flat_map(|(t, b)| encode(*t, b)).collect();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut pos = 0;
        let mut cut = cuts.iter().cycle();
        while pos < stream.len() {
            let n = (*cut.next().unwrap_or(&stream.len())).min(stream.len() - pos);
            buf.extend_from_slice(&stream[pos..pos + n]);
            pos += n;
            while let Some(m) = take_message(&mut buf, 1 << 20).unwrap() {
                got.push((m.tag(), m.body().to_vec()));
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn a_length_field_below_four_or_above_the_limit_is_an_error(
        tag in any::<u8>(),
        len in prop_oneof![i32::MIN..4i32, (1i32 << 20) + 1..i32::MAX],
        rest in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[tag]);
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(&rest);
        prop_assert!(take_message(&mut buf, 1 << 20).is_err());
    }

    #[test]
    fn startup_parameters_round_trip(
        params in prop::collection::vec(("[a-z_]{1,12}", "[^\u{0}]{0,20}"), 0..8),
    ) {
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut buf = builders::startup_message(&pairs);
        let packet = take_startup(&mut buf).unwrap().unwrap();
        prop_assert!(buf.is_empty());
        match parse_startup(&packet).unwrap() {
            StartupPacket::Startup(p) => prop_assert_eq!(p.params, params),
            other => prop_assert!(false, "parsed as {:?}", other),
        }
    }

    #[test]
    fn any_startup_bytes_are_a_packet_an_error_or_a_wait(
        data in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut buf = BytesMut::from(&data[..]);
        match take_startup(&mut buf) {
            Ok(Some(packet)) => { let _ = parse_startup(&packet); }
            Ok(None) => prop_assert!(data.len() < 4 || buf.len() == data.len()),
            Err(ProtocolError::BadLength(_) | ProtocolError::TooLarge { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

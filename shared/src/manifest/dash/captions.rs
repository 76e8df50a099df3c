//! `Accessibility` descriptors (ISO/IEC 23009-1 §5.8.4.3) of the captions a video
//! AdaptationSet carries in its SEI, in the schemes of ANSI/SCTE 214-1 (DASH-IF IOP §6.4.3).

use crate::model::CaptionChannel;

/// The SCTE 214-1 scheme for CEA-608 captions in the video.
pub const CEA608_SCHEME: &str = "urn:scte:dash:cc:cea-608:2015";
/// The SCTE 214-1 scheme for CEA-708 caption services in the video.
pub const CEA708_SCHEME: &str = "urn:scte:dash:cc:cea-708:2015";

/// `Accessibility` descriptors of caption channels: CEA-608 as `CC1=und;CC3=und`, CEA-708
/// as `1=lang:und` (SCTE 214-1: channel or service number `=` ISO 639-2 language; `und`,
/// undetermined, since caption data names no language, and a value without `=` is read
/// as a list of languages).
pub(super) fn accessibility(captions: &[CaptionChannel]) -> Vec<(&'static str, String)> {
    let cea608: Vec<String> = captions
        .iter()
        .filter(|c| matches!(c, CaptionChannel::Cea608(_)))
        .map(|c| format!("{c}=und"))
        .collect();
    let cea708: Vec<String> = captions
        .iter()
        .filter_map(|c| match c {
            CaptionChannel::Cea708(n) => Some(format!("{n}=lang:und")),
            CaptionChannel::Cea608(_) => None,
        })
        .collect();
    [(CEA608_SCHEME, cea608), (CEA708_SCHEME, cea708)]
        .into_iter()
        .filter(|(_, values)| !values.is_empty())
        .map(|(scheme, values)| (scheme, values.join(";")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use CaptionChannel::*;

    #[test]
    fn captions_are_described_with_the_scte_214_schemes() {
        assert!(accessibility(&[]).is_empty());
        assert_eq!(
            accessibility(&[Cea608(1), Cea608(3), Cea708(1), Cea708(2)]),
            [
                (CEA608_SCHEME, "CC1=und;CC3=und".to_owned()),
                (CEA708_SCHEME, "1=lang:und;2=lang:und".to_owned())
            ]
        );
    }
}

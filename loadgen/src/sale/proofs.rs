//! The shuffle's proof, checked by the run: each event's `GetShuffleProof` must verify, and
//! every fan of this run who was in a pre-queue must find its line at the place it was shown
//! when the sale opened.

use tonic::transport::Channel;

use super::fans::Target;
use super::record::Recorder;

/// Checks each event's shuffle proof (`GetShuffleProof`) and that every fan of this run who
/// was in its pre-queue was given the place the proof gives; a failure is evidence. Returns a
/// line per event for the report.
pub(super) async fn check_shuffles(
    channel: Channel,
    events: &[Target],
    recorder: &Recorder,
) -> Vec<String> {
    use taquilla_proto::fairness;
    let mut lines = Vec::new();
    for target in events {
        let id = &target.event_id;
        let chunks = match fairness::download(channel.clone(), id).await {
            Ok(chunks) => chunks,
            Err(status) => {
                lines.push(format!("{id}: no shuffle proof: {}", status.message()));
                continue;
            }
        };
        let proof = match fairness::assemble(chunks) {
            Ok(downloaded) => match downloaded.proof {
                Some(proof) => proof,
                None => {
                    lines.push(format!("{id}: the sale never opened; no shuffle to check"));
                    continue;
                }
            },
            Err(why) => {
                recorder.add_evidence(format!("{id}: the shuffle proof is malformed: {why}"));
                continue;
            }
        };
        if let Err(why) = fairness::verify(&proof) {
            recorder.add_evidence(format!("{id}: the shuffle does not verify: {why}"));
            continue;
        }
        let placements = recorder.placements(id);
        let places = fairness::Places::of(&proof);
        let mut wrong = 0usize;
        for placed in &placements {
            let given = places
                .find(&placed.queue_token)
                .map(|(_, position)| position);
            if given != Some(placed.position) {
                wrong += 1;
                if wrong <= 3 {
                    recorder.add_evidence(format!(
                        "{id}: a fan was shown place {} at opening; the shuffle's proof gives {}",
                        placed.position,
                        given.map_or("no place (not in the manifest)".to_string(), |p| p
                            .to_string())
                    ));
                }
            }
        }
        lines.push(format!(
            "{id}: shuffle verified: {} fans in the pre-queue, {} of this run's found at the \
             place they were shown{}",
            proof.entries.len(),
            placements.len() - wrong,
            if wrong > 0 {
                format!(", {wrong} not")
            } else {
                String::new()
            }
        ));
    }
    lines
}

//! A pipeline across slots on a cluster. The cluster client sends a pipeline to one node and
//! refuses one whose commands name keys of different slots; the programs pipeline reads of
//! many agents at once (the dashboard reads every server's heartbeat in one), so a plain
//! (non-transaction) pipeline is cut into one pipeline per slot, sent concurrently, and the
//! replies are put back in the order of the commands. A transaction stays whole: it must be
//! in one slot anyway (its keys share a hash tag).

use std::collections::HashMap;

use futures_util::future::try_join_all;
use redis::aio::ConnectionLike;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Arg, Cmd, Pipeline, RedisResult, Value};

/// Where one command of a pipeline goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Place {
    /// The node of this slot.
    Slot(Slot),
    /// Anywhere (no key): it joins another group.
    Anywhere,
}

/// The first key of `cmd`, for the commands the programs pipeline: the argument after the
/// name, or for a script (`EVAL`, `EVALSHA`, `FCALL`) the first of its keys.
fn place(cmd: &Cmd) -> Place {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .filter_map(|a| match a {
            Arg::Simple(bytes) => Some(bytes),
            _ => None,
        })
        .collect();
    let Some(name) = args.first() else {
        return Place::Anywhere;
    };
    let name = name.to_ascii_uppercase();
    let key = match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            match args.get(2) {
                Some(n) if *n != b"0" => args.get(3),
                _ => None,
            }
        }
        b"PING" | b"PUBLISH" | b"ECHO" | b"TIME" | b"INFO" | b"SCRIPT" | b"ACL" | b"CLIENT"
        | b"COMMAND" | b"DBSIZE" | b"CLUSTER" => None,
        _ => args.get(1),
    };
    key.map_or(Place::Anywhere, |k| Place::Slot(Slot::for_key(k)))
}

/// The commands of `pipeline` grouped by where they go, each group with the indexes of its
/// commands; `None` when they all go to one place (send the pipeline as it is).
fn groups(pipeline: &Pipeline) -> Option<Vec<Vec<usize>>> {
    let mut by_place: HashMap<Place, Vec<usize>> = HashMap::new();
    let mut order = Vec::new();
    for (i, cmd) in pipeline.cmd_iter().enumerate() {
        let p = place(cmd);
        by_place
            .entry(p)
            .or_insert_with(|| {
                order.push(p);
                Vec::new()
            })
            .push(i);
    }
    let slots = order.iter().filter(|p| **p != Place::Anywhere).count();
    if slots <= 1 {
        return None;
    }
    let anywhere = by_place.remove(&Place::Anywhere).unwrap_or_default();
    let mut groups: Vec<Vec<usize>> = order.iter().filter_map(|p| by_place.remove(p)).collect();
    groups[0].extend(anywhere);
    Some(groups)
}

/// Sends `pipeline` (commands `offset..offset + count` of its replies, as
/// `ConnectionLike::req_packed_commands` asks) over the cluster, cut by slot when it spans
/// several.
pub(crate) async fn send(
    conn: &mut ClusterConnection,
    pipeline: &Pipeline,
    offset: usize,
    count: usize,
) -> RedisResult<Vec<Value>> {
    let cut = if pipeline.is_transaction() || offset != 0 || count != pipeline.len() {
        None
    } else {
        groups(pipeline)
    };
    let Some(groups) = cut else {
        return conn.req_packed_commands(pipeline, offset, count).await;
    };
    let commands: Vec<&Cmd> = pipeline.cmd_iter().collect();
    let parts = groups.iter().map(|indexes| {
        let mut part = redis::pipe();
        for &i in indexes {
            part.add_command(commands[i].clone());
        }
        let mut conn = conn.clone();
        async move {
            let n = part.len();
            conn.req_packed_commands(&part, 0, n).await
        }
    });
    let replies = try_join_all(parts).await?;
    let mut out = vec![Value::Nil; pipeline.len()];
    for (indexes, values) in groups.iter().zip(replies) {
        for (&i, v) in indexes.iter().zip(values) {
            out[i] = v;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_placed_by_their_first_key_and_scripts_by_theirs() {
        let tagged = |k: &str| Place::Slot(Slot::for_key(k));
        assert_eq!(
            place(redis::cmd("GET").arg("outfitter:agent:{a}:heartbeat")),
            tagged("{a}")
        );
        let mut script = redis::cmd("EVALSHA");
        script
            .arg("abc")
            .arg(2)
            .arg("outfitter:agent:{b}:job:1")
            .arg("x");
        assert_eq!(place(&script), tagged("{b}"));
        let mut keyless = redis::cmd("EVALSHA");
        keyless.arg("abc").arg(0).arg("arg");
        assert_eq!(place(&keyless), Place::Anywhere);
        assert_eq!(
            place(redis::cmd("PUBLISH").arg("ch").arg("m")),
            Place::Anywhere
        );
    }

    #[test]
    fn a_pipeline_over_several_slots_is_cut_by_slot_and_keeps_keyless_commands() {
        let mut p = redis::pipe();
        p.get("outfitter:agent:{a}:heartbeat")
            .get("outfitter:agent:{b}:heartbeat")
            .cmd("PING")
            .hgetall("outfitter:agent:{a}:job:1");
        assert_eq!(groups(&p), Some(vec![vec![0, 3, 2], vec![1]]));
        let mut one = redis::pipe();
        one.get("outfitter:agent:{a}:x")
            .cmd("PING")
            .get("outfitter:agent:{a}:y");
        assert_eq!(groups(&one), None);
    }
}

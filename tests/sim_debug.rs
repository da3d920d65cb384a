use dynamo::sim::world::World;
use dynamo::sim::SimConfig;

#[test]
fn debug_seed() {
    let mut config = SimConfig::new(441);
    config.ops = 200;
    config.nodes = 5;
    let mut world = World::new(config);
    world.run_safety();
    world.run_liveness();
    let union = world.cluster().clone();
    eprintln!("UNION owners {:?}", union.owners.as_ref().map(|t| (t.version, t.next.is_some())));
    for (n, e) in &union.members { eprintln!("  U {n} {:?} v{} ready{}", e.status, e.version, e.ready_for); }
    for i in 0..world.node_count() {
        let Some(c) = world.node_cluster(i) else { continue };
        eprintln!("NODE {i} up={} owners {:?} same={}", world.is_up(i), c.owners.as_ref().map(|t| (t.version, t.next.is_some())), *c == union);
        for (n, e) in &c.members { eprintln!("    {n} {:?} v{} ready{}", e.status, e.version, e.ready_for); }
    }
    eprintln!("STATS lost={} removals={} done={} joins={} aborts={} proposals={} installs={}", world.stats().nodes_lost, world.stats().removals, world.stats().removals_done, world.stats().joins, world.stats().ring_aborts, world.stats().ring_proposals, world.stats().ring_installs);
    let r = world.finish();
    eprintln!("{:?}", r.failure());
}

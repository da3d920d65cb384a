
use builtin;
use str;

set edit:completion:arg-completer[dynamo] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'dynamo'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'dynamo'= {
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand up 'Create the cluster home if absent, start the nodes, wait until all serve'
            cand down 'Stop every node gracefully'
            cand status 'Show every node: address, state, partitions, keys, pending hints'
            cand kill 'Crash a node (SIGKILL)'
            cand stop 'Stop a node gracefully'
            cand start 'Start a stopped node again with its data'
            cand add-node 'Add a node to the dev cluster and give it its share of partitions'
            cand leave 'Move a node''s partitions away, then stop it'
            cand partition 'Split the network: nodes in different groups cannot reach each other'
            cand heal 'Undo `dynamo partition`'
            cand node 'Run one node in the foreground'
            cand logs 'Show a node''s log'
            cand put 'Write a value'
            cand get 'Read a value (its exact bytes on stdout)'
            cand delete 'Delete a key (writes a tombstone)'
            cand resolve 'Collapse a key''s siblings into one value'
            cand ring 'Show the ring: partitions, ranges, owners, preference lists'
            cand bucket 'Show or set buckets'' own N, R and W'
            cand keys 'List a bucket''s live keys, in a stable order'
            cand merkle 'Show Merkle roots per partition per replica'
            cand repair 'Run anti-entropy now, until every replica set agrees'
            cand bench 'Load the running cluster and report throughput and latency'
            cand sim 'Run a seeded simulated cluster in one process with faults'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dynamo;up'= {
            cand -n 'Number of nodes [default: 5]'
            cand --nodes 'Number of nodes [default: 5]'
            cand -N 'N: replicas per key [default: 3]'
            cand --replicas 'N: replicas per key [default: 3]'
            cand -R 'R: replies a read waits for [default: 2]'
            cand --read-quorum 'R: replies a read waits for [default: 2]'
            cand -W 'W: acknowledgements a write waits for [default: 2]'
            cand --write-quorum 'W: acknowledgements a write waits for [default: 2]'
            cand -Q 'Q: partitions of the ring, a power of two [default: 64]'
            cand --partitions 'Q: partitions of the ring, a power of two [default: 64]'
            cand -p 'First node''s UDP port, the next ones follow; 0 picks free ports [default: 7101]'
            cand --base-port 'First node''s UDP port, the next ones follow; 0 picks free ports [default: 7101]'
            cand --durability 'How nodes commit writes: `immediate` fsyncs each group commit before acknowledging it; `buffered` fsyncs every flush interval [default: immediate]'
            cand --tombstone-grace-ms 'Milliseconds a deleted key''s tombstone stays before it is collected (once every node holds it); kept for later starts [default: 3600000]'
            cand --name 'Name of a new cluster [default: dynamo-dev]'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand -d 'Return once the cluster serves, leaving it running'
            cand --detach 'Return once the cluster serves, leaving it running'
            cand --json 'Print one JSON document instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;down'= {
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand --purge 'Also delete the cluster home and all its data'
            cand --json 'Print one JSON document instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;status'= {
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand --json 'Print one JSON document instead of a table'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;kill'= {
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;stop'= {
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;start'= {
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;add-node'= {
            cand --name 'The new node''s name [default: the next free nN]'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand --json 'Print one JSON document instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;leave'= {
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand --force 'The node is down for good: the others take its partitions from the surviving replicas (its folder is kept)'
            cand --json 'Print one JSON document instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;partition'= {
            cand --isolate 'Cut one node off from all the others'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;heal'= {
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;node'= {
            cand --config 'The node''s node.toml'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;logs'= {
            cand -n 'Print only the last LINES lines'
            cand --lines 'Print only the last LINES lines'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand -f 'Keep printing new lines until Ctrl-C'
            cand --follow 'Keep printing new lines until Ctrl-C'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;put'= {
            cand --bucket 'The bucket the key lives in'
            cand --context 'The context token from the read this write is based on'
            cand --file 'Read the value from this file'
            cand --node 'Send the write to this node as coordinator'
            cand -W 'W: acknowledgements to wait for [default: the cluster''s W]'
            cand --write-quorum 'W: acknowledgements to wait for [default: the cluster''s W]'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;get'= {
            cand --bucket 'The bucket the key lives in'
            cand --node 'Send the read to this node as coordinator'
            cand -R 'R: replies to wait for [default: the cluster''s R]'
            cand --read-quorum 'R: replies to wait for [default: the cluster''s R]'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand --explain 'Show how the answer came about: replicas, fallbacks, hints, repair'
            cand --json 'Print one JSON document with every sibling and the context'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;delete'= {
            cand --bucket 'The bucket the key lives in'
            cand --context 'The context token from the read this delete is based on'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;resolve'= {
            cand --bucket 'The bucket the key lives in'
            cand --pick 'Keep sibling N (1-based, in the order shown) without asking'
            cand --value 'Write this value without asking'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;ring'= {
            cand --key 'Show where this key lives'
            cand --bucket 'The bucket of --key (its N gives the preference list)'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand --json 'Print one JSON document instead of a table'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand plan 'What a membership change would do, before doing it'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dynamo;ring;plan'= {
            cand --add 'Plan adding this many nodes'
            cand --remove 'Plan removing this node'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand --json 'Print one JSON document instead of a table'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;ring;help'= {
            cand plan 'What a membership change would do, before doing it'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dynamo;ring;help;plan'= {
        }
        &'dynamo;ring;help;help'= {
        }
        &'dynamo;bucket'= {
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'The default bucket and every bucket with settings of its own'
            cand show 'One bucket''s N, R and W (the cluster''s when it has none of its own)'
            cand set 'Give a bucket its own N, R or W (N only while it holds no keys)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dynamo;bucket;list'= {
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand --json 'Print one JSON document instead of a table'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;bucket;show'= {
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand --json 'Print one JSON document instead of a line'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;bucket;set'= {
            cand -N 'N: replicas per key'
            cand --replicas 'N: replicas per key'
            cand -R 'R: replies a get waits for'
            cand --read-quorum 'R: replies a get waits for'
            cand -W 'W: acknowledgements a put waits for'
            cand --write-quorum 'W: acknowledgements a put waits for'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand --json 'Print one JSON document instead of a line'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;bucket;help'= {
            cand list 'The default bucket and every bucket with settings of its own'
            cand show 'One bucket''s N, R and W (the cluster''s when it has none of its own)'
            cand set 'Give a bucket its own N, R or W (N only while it holds no keys)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dynamo;bucket;help;list'= {
        }
        &'dynamo;bucket;help;show'= {
        }
        &'dynamo;bucket;help;set'= {
        }
        &'dynamo;bucket;help;help'= {
        }
        &'dynamo;keys'= {
            cand --bucket 'The bucket'
            cand --limit 'Stop after this many keys'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand --json 'Print one JSON document (streamed) instead of one key per line'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;merkle'= {
            cand --node 'Only this replica'
            cand --partition 'Show this partition''s whole tree'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand --json 'Print one JSON document instead of a table'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand diff 'The key ranges and keys where two replicas differ'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dynamo;merkle;diff'= {
            cand --partition 'Only this partition'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand --json 'Print one JSON document instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;merkle;help'= {
            cand diff 'The key ranges and keys where two replicas differ'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dynamo;merkle;help;diff'= {
        }
        &'dynamo;merkle;help;help'= {
        }
        &'dynamo;repair'= {
            cand --node 'Repair only the replica sets this node belongs to'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand --json 'Print one JSON document instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;bench'= {
            cand --duration 'How long to run, in seconds'
            cand --concurrency 'Requests in flight at once'
            cand --value-size 'Bytes per value written'
            cand --keys 'Distinct keys used'
            cand --read-ratio 'Share of operations that are reads, from 0 to 1'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand --json 'Print one JSON document instead of a table'
            cand --http 'Send the requests over the HTTPS API (one connection per task)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;sim'= {
            cand --seed 'The seed; the same seed (and the same other flags) replays the same run exactly [default: random]'
            cand --seeds 'Run every seed of a range, A..B (B excluded), in this process; stop at the first failing seed and print the command that replays it'
            cand --nodes 'Nodes in the simulated cluster'
            cand --ops 'Client operations to run (per seed)'
            cand --faults 'Comma-separated faults to inject [default: drawn from the seed]'
            cand -N 'N: replicas per key'
            cand --replicas 'N: replicas per key'
            cand -R 'R: replies a read waits for'
            cand --read-quorum 'R: replies a read waits for'
            cand -W 'W: acknowledgements a write waits for'
            cand --write-quorum 'W: acknowledgements a write waits for'
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand --json 'Print one JSON document instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;completions'= {
            cand --home 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dynamo;help'= {
            cand up 'Create the cluster home if absent, start the nodes, wait until all serve'
            cand down 'Stop every node gracefully'
            cand status 'Show every node: address, state, partitions, keys, pending hints'
            cand kill 'Crash a node (SIGKILL)'
            cand stop 'Stop a node gracefully'
            cand start 'Start a stopped node again with its data'
            cand add-node 'Add a node to the dev cluster and give it its share of partitions'
            cand leave 'Move a node''s partitions away, then stop it'
            cand partition 'Split the network: nodes in different groups cannot reach each other'
            cand heal 'Undo `dynamo partition`'
            cand node 'Run one node in the foreground'
            cand logs 'Show a node''s log'
            cand put 'Write a value'
            cand get 'Read a value (its exact bytes on stdout)'
            cand delete 'Delete a key (writes a tombstone)'
            cand resolve 'Collapse a key''s siblings into one value'
            cand ring 'Show the ring: partitions, ranges, owners, preference lists'
            cand bucket 'Show or set buckets'' own N, R and W'
            cand keys 'List a bucket''s live keys, in a stable order'
            cand merkle 'Show Merkle roots per partition per replica'
            cand repair 'Run anti-entropy now, until every replica set agrees'
            cand bench 'Load the running cluster and report throughput and latency'
            cand sim 'Run a seeded simulated cluster in one process with faults'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dynamo;help;up'= {
        }
        &'dynamo;help;down'= {
        }
        &'dynamo;help;status'= {
        }
        &'dynamo;help;kill'= {
        }
        &'dynamo;help;stop'= {
        }
        &'dynamo;help;start'= {
        }
        &'dynamo;help;add-node'= {
        }
        &'dynamo;help;leave'= {
        }
        &'dynamo;help;partition'= {
        }
        &'dynamo;help;heal'= {
        }
        &'dynamo;help;node'= {
        }
        &'dynamo;help;logs'= {
        }
        &'dynamo;help;put'= {
        }
        &'dynamo;help;get'= {
        }
        &'dynamo;help;delete'= {
        }
        &'dynamo;help;resolve'= {
        }
        &'dynamo;help;ring'= {
            cand plan 'What a membership change would do, before doing it'
        }
        &'dynamo;help;ring;plan'= {
        }
        &'dynamo;help;bucket'= {
            cand list 'The default bucket and every bucket with settings of its own'
            cand show 'One bucket''s N, R and W (the cluster''s when it has none of its own)'
            cand set 'Give a bucket its own N, R or W (N only while it holds no keys)'
        }
        &'dynamo;help;bucket;list'= {
        }
        &'dynamo;help;bucket;show'= {
        }
        &'dynamo;help;bucket;set'= {
        }
        &'dynamo;help;keys'= {
        }
        &'dynamo;help;merkle'= {
            cand diff 'The key ranges and keys where two replicas differ'
        }
        &'dynamo;help;merkle;diff'= {
        }
        &'dynamo;help;repair'= {
        }
        &'dynamo;help;bench'= {
        }
        &'dynamo;help;sim'= {
        }
        &'dynamo;help;completions'= {
        }
        &'dynamo;help;help'= {
        }
    ]
    $completions[$command]
}

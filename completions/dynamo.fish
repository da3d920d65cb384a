# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_dynamo_global_optspecs
    string join \n home= h/help V/version
end

function __fish_dynamo_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_dynamo_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_dynamo_using_subcommand
    set -l cmd (__fish_dynamo_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c dynamo -n "__fish_dynamo_needs_command" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dynamo -n "__fish_dynamo_needs_command" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "up" -d 'Create the cluster home if absent, start the nodes, wait until all serve'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "down" -d 'Stop every node gracefully'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "status" -d 'Show every node: address, state, partitions, keys, pending hints'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "kill" -d 'Crash a node (SIGKILL)'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "stop" -d 'Stop a node gracefully'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "start" -d 'Start a stopped node again with its data'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "add-node" -d 'Add a node to the dev cluster and give it its share of partitions'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "leave" -d 'Move a node\'s partitions away, then stop it'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "partition" -d 'Split the network: nodes in different groups cannot reach each other'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "heal" -d 'Undo `dynamo partition`'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "node" -d 'Run one node in the foreground'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "logs" -d 'Show a node\'s log'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "put" -d 'Write a value'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "get" -d 'Read a value (its exact bytes on stdout)'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "delete" -d 'Delete a key (writes a tombstone)'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "resolve" -d 'Collapse a key\'s siblings into one value'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "ring" -d 'Show the ring: partitions, ranges, owners, preference lists'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "bucket" -d 'Show or set buckets\' own N, R and W'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "keys" -d 'List a bucket\'s live keys, in a stable order'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "merkle" -d 'Show Merkle roots per partition per replica'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "repair" -d 'Run anti-entropy now, until every replica set agrees'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "bench" -d 'Load the running cluster and report throughput and latency'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "sim" -d 'Run a seeded simulated cluster in one process with faults'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c dynamo -n "__fish_dynamo_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dynamo -n "__fish_dynamo_using_subcommand up" -s n -l nodes -d 'Number of nodes [default: 5]' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand up" -s N -l replicas -d 'N: replicas per key [default: 3]' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand up" -s R -l read-quorum -d 'R: replies a read waits for [default: 2]' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand up" -s W -l write-quorum -d 'W: acknowledgements a write waits for [default: 2]' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand up" -s Q -l partitions -d 'Q: partitions of the ring, a power of two [default: 64]' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand up" -s p -l base-port -d 'First node\'s UDP port, the next ones follow; 0 picks free ports [default: 7101]' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand up" -l durability -d 'How nodes commit writes: `immediate` fsyncs each group commit before acknowledging it; `buffered` fsyncs every flush interval [default: immediate]' -r -f -a "immediate\t'fsync every group commit before acknowledging its writes'
buffered\t'fsync every flush interval; a crash may lose this replica\'s last interval'"
complete -c dynamo -n "__fish_dynamo_using_subcommand up" -l tombstone-grace-ms -d 'Milliseconds a deleted key\'s tombstone stays before it is collected (once every node holds it); kept for later starts [default: 3600000]' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand up" -l name -d 'Name of a new cluster [default: dynamo-dev]' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand up" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand up" -s d -l detach -d 'Return once the cluster serves, leaving it running'
complete -c dynamo -n "__fish_dynamo_using_subcommand up" -l json -d 'Print one JSON document instead of a table'
complete -c dynamo -n "__fish_dynamo_using_subcommand up" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dynamo -n "__fish_dynamo_using_subcommand up" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand down" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand down" -l purge -d 'Also delete the cluster home and all its data'
complete -c dynamo -n "__fish_dynamo_using_subcommand down" -l json -d 'Print one JSON document instead of text'
complete -c dynamo -n "__fish_dynamo_using_subcommand down" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand down" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand status" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand status" -l json -d 'Print one JSON document instead of a table'
complete -c dynamo -n "__fish_dynamo_using_subcommand status" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand status" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand kill" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand kill" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand kill" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand stop" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand stop" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand stop" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand start" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand start" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand start" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand add-node" -l name -d 'The new node\'s name [default: the next free nN]' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand add-node" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand add-node" -l json -d 'Print one JSON document instead of text'
complete -c dynamo -n "__fish_dynamo_using_subcommand add-node" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand add-node" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand leave" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand leave" -l force -d 'The node is down for good: the others take its partitions from the surviving replicas (its folder is kept)'
complete -c dynamo -n "__fish_dynamo_using_subcommand leave" -l json -d 'Print one JSON document instead of text'
complete -c dynamo -n "__fish_dynamo_using_subcommand leave" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand leave" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand partition" -l isolate -d 'Cut one node off from all the others' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand partition" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand partition" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand partition" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand heal" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand heal" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand heal" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand node" -l config -d 'The node\'s node.toml' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand node" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand node" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand node" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand logs" -s n -l lines -d 'Print only the last LINES lines' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand logs" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand logs" -s f -l follow -d 'Keep printing new lines until Ctrl-C'
complete -c dynamo -n "__fish_dynamo_using_subcommand logs" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand logs" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand put" -l bucket -d 'The bucket the key lives in' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand put" -l context -d 'The context token from the read this write is based on' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand put" -l file -d 'Read the value from this file' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand put" -l node -d 'Send the write to this node as coordinator' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand put" -s W -l write-quorum -d 'W: acknowledgements to wait for [default: the cluster\'s W]' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand put" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand put" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand put" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand get" -l bucket -d 'The bucket the key lives in' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand get" -l node -d 'Send the read to this node as coordinator' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand get" -s R -l read-quorum -d 'R: replies to wait for [default: the cluster\'s R]' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand get" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand get" -l explain -d 'Show how the answer came about: replicas, fallbacks, hints, repair'
complete -c dynamo -n "__fish_dynamo_using_subcommand get" -l json -d 'Print one JSON document with every sibling and the context'
complete -c dynamo -n "__fish_dynamo_using_subcommand get" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand get" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand delete" -l bucket -d 'The bucket the key lives in' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand delete" -l context -d 'The context token from the read this delete is based on' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand delete" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand delete" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand delete" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand resolve" -l bucket -d 'The bucket the key lives in' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand resolve" -l pick -d 'Keep sibling N (1-based, in the order shown) without asking' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand resolve" -l value -d 'Write this value without asking' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand resolve" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand resolve" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand resolve" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand ring; and not __fish_seen_subcommand_from plan help" -l key -d 'Show where this key lives' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand ring; and not __fish_seen_subcommand_from plan help" -l bucket -d 'The bucket of --key (its N gives the preference list)' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand ring; and not __fish_seen_subcommand_from plan help" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand ring; and not __fish_seen_subcommand_from plan help" -l json -d 'Print one JSON document instead of a table'
complete -c dynamo -n "__fish_dynamo_using_subcommand ring; and not __fish_seen_subcommand_from plan help" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand ring; and not __fish_seen_subcommand_from plan help" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand ring; and not __fish_seen_subcommand_from plan help" -f -a "plan" -d 'What a membership change would do, before doing it'
complete -c dynamo -n "__fish_dynamo_using_subcommand ring; and not __fish_seen_subcommand_from plan help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dynamo -n "__fish_dynamo_using_subcommand ring; and __fish_seen_subcommand_from plan" -l add -d 'Plan adding this many nodes' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand ring; and __fish_seen_subcommand_from plan" -l remove -d 'Plan removing this node' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand ring; and __fish_seen_subcommand_from plan" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand ring; and __fish_seen_subcommand_from plan" -l json -d 'Print one JSON document instead of a table'
complete -c dynamo -n "__fish_dynamo_using_subcommand ring; and __fish_seen_subcommand_from plan" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand ring; and __fish_seen_subcommand_from plan" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand ring; and __fish_seen_subcommand_from help" -f -a "plan" -d 'What a membership change would do, before doing it'
complete -c dynamo -n "__fish_dynamo_using_subcommand ring; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and not __fish_seen_subcommand_from list show set help" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and not __fish_seen_subcommand_from list show set help" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and not __fish_seen_subcommand_from list show set help" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and not __fish_seen_subcommand_from list show set help" -f -a "list" -d 'The default bucket and every bucket with settings of its own'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and not __fish_seen_subcommand_from list show set help" -f -a "show" -d 'One bucket\'s N, R and W (the cluster\'s when it has none of its own)'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and not __fish_seen_subcommand_from list show set help" -f -a "set" -d 'Give a bucket its own N, R or W (N only while it holds no keys)'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and not __fish_seen_subcommand_from list show set help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from list" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from list" -l json -d 'Print one JSON document instead of a table'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from show" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from show" -l json -d 'Print one JSON document instead of a line'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from set" -s N -l replicas -d 'N: replicas per key' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from set" -s R -l read-quorum -d 'R: replies a get waits for' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from set" -s W -l write-quorum -d 'W: acknowledgements a put waits for' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from set" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from set" -l json -d 'Print one JSON document instead of a line'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from set" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from help" -f -a "list" -d 'The default bucket and every bucket with settings of its own'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from help" -f -a "show" -d 'One bucket\'s N, R and W (the cluster\'s when it has none of its own)'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from help" -f -a "set" -d 'Give a bucket its own N, R or W (N only while it holds no keys)'
complete -c dynamo -n "__fish_dynamo_using_subcommand bucket; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dynamo -n "__fish_dynamo_using_subcommand keys" -l bucket -d 'The bucket' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand keys" -l limit -d 'Stop after this many keys' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand keys" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand keys" -l json -d 'Print one JSON document (streamed) instead of one key per line'
complete -c dynamo -n "__fish_dynamo_using_subcommand keys" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand keys" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand merkle; and not __fish_seen_subcommand_from diff help" -l node -d 'Only this replica' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand merkle; and not __fish_seen_subcommand_from diff help" -l partition -d 'Show this partition\'s whole tree' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand merkle; and not __fish_seen_subcommand_from diff help" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand merkle; and not __fish_seen_subcommand_from diff help" -l json -d 'Print one JSON document instead of a table'
complete -c dynamo -n "__fish_dynamo_using_subcommand merkle; and not __fish_seen_subcommand_from diff help" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand merkle; and not __fish_seen_subcommand_from diff help" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand merkle; and not __fish_seen_subcommand_from diff help" -f -a "diff" -d 'The key ranges and keys where two replicas differ'
complete -c dynamo -n "__fish_dynamo_using_subcommand merkle; and not __fish_seen_subcommand_from diff help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dynamo -n "__fish_dynamo_using_subcommand merkle; and __fish_seen_subcommand_from diff" -l partition -d 'Only this partition' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand merkle; and __fish_seen_subcommand_from diff" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand merkle; and __fish_seen_subcommand_from diff" -l json -d 'Print one JSON document instead of text'
complete -c dynamo -n "__fish_dynamo_using_subcommand merkle; and __fish_seen_subcommand_from diff" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand merkle; and __fish_seen_subcommand_from diff" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand merkle; and __fish_seen_subcommand_from help" -f -a "diff" -d 'The key ranges and keys where two replicas differ'
complete -c dynamo -n "__fish_dynamo_using_subcommand merkle; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dynamo -n "__fish_dynamo_using_subcommand repair" -l node -d 'Repair only the replica sets this node belongs to' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand repair" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand repair" -l json -d 'Print one JSON document instead of text'
complete -c dynamo -n "__fish_dynamo_using_subcommand repair" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand repair" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand bench" -l duration -d 'How long to run, in seconds' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand bench" -l concurrency -d 'Requests in flight at once' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand bench" -l value-size -d 'Bytes per value written' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand bench" -l keys -d 'Distinct keys used' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand bench" -l read-ratio -d 'Share of operations that are reads, from 0 to 1' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand bench" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand bench" -l json -d 'Print one JSON document instead of a table'
complete -c dynamo -n "__fish_dynamo_using_subcommand bench" -l http -d 'Send the requests over the HTTPS API (one connection per task)'
complete -c dynamo -n "__fish_dynamo_using_subcommand bench" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand bench" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand sim" -l seed -d 'The seed; the same seed (and the same other flags) replays the same run exactly [default: random]' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand sim" -l seeds -d 'Run every seed of a range, A..B (B excluded), in this process; stop at the first failing seed and print the command that replays it' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand sim" -l nodes -d 'Nodes in the simulated cluster' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand sim" -l ops -d 'Client operations to run (per seed)' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand sim" -l faults -d 'Comma-separated faults to inject [default: drawn from the seed]' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand sim" -s N -l replicas -d 'N: replicas per key' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand sim" -s R -l read-quorum -d 'R: replies a read waits for' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand sim" -s W -l write-quorum -d 'W: acknowledgements a write waits for' -r
complete -c dynamo -n "__fish_dynamo_using_subcommand sim" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand sim" -l json -d 'Print one JSON document instead of text'
complete -c dynamo -n "__fish_dynamo_using_subcommand sim" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dynamo -n "__fish_dynamo_using_subcommand sim" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand completions" -l home -d 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]' -r -F
complete -c dynamo -n "__fish_dynamo_using_subcommand completions" -s h -l help -d 'Print help'
complete -c dynamo -n "__fish_dynamo_using_subcommand completions" -s V -l version -d 'Print version'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "up" -d 'Create the cluster home if absent, start the nodes, wait until all serve'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "down" -d 'Stop every node gracefully'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "status" -d 'Show every node: address, state, partitions, keys, pending hints'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "kill" -d 'Crash a node (SIGKILL)'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "stop" -d 'Stop a node gracefully'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "start" -d 'Start a stopped node again with its data'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "add-node" -d 'Add a node to the dev cluster and give it its share of partitions'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "leave" -d 'Move a node\'s partitions away, then stop it'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "partition" -d 'Split the network: nodes in different groups cannot reach each other'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "heal" -d 'Undo `dynamo partition`'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "node" -d 'Run one node in the foreground'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "logs" -d 'Show a node\'s log'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "put" -d 'Write a value'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "get" -d 'Read a value (its exact bytes on stdout)'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "delete" -d 'Delete a key (writes a tombstone)'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "resolve" -d 'Collapse a key\'s siblings into one value'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "ring" -d 'Show the ring: partitions, ranges, owners, preference lists'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "bucket" -d 'Show or set buckets\' own N, R and W'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "keys" -d 'List a bucket\'s live keys, in a stable order'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "merkle" -d 'Show Merkle roots per partition per replica'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "repair" -d 'Run anti-entropy now, until every replica set agrees'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "bench" -d 'Load the running cluster and report throughput and latency'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "sim" -d 'Run a seeded simulated cluster in one process with faults'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and not __fish_seen_subcommand_from up down status kill stop start add-node leave partition heal node logs put get delete resolve ring bucket keys merkle repair bench sim completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and __fish_seen_subcommand_from ring" -f -a "plan" -d 'What a membership change would do, before doing it'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and __fish_seen_subcommand_from bucket" -f -a "list" -d 'The default bucket and every bucket with settings of its own'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and __fish_seen_subcommand_from bucket" -f -a "show" -d 'One bucket\'s N, R and W (the cluster\'s when it has none of its own)'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and __fish_seen_subcommand_from bucket" -f -a "set" -d 'Give a bucket its own N, R or W (N only while it holds no keys)'
complete -c dynamo -n "__fish_dynamo_using_subcommand help; and __fish_seen_subcommand_from merkle" -f -a "diff" -d 'The key ranges and keys where two replicas differ'

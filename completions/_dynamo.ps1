
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'dynamo' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'dynamo'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'dynamo' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('up', 'up', [CompletionResultType]::ParameterValue, 'Create the cluster home if absent, start the nodes, wait until all serve')
            [CompletionResult]::new('down', 'down', [CompletionResultType]::ParameterValue, 'Stop every node gracefully')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show every node: address, state, partitions, keys, pending hints')
            [CompletionResult]::new('kill', 'kill', [CompletionResultType]::ParameterValue, 'Crash a node (SIGKILL)')
            [CompletionResult]::new('stop', 'stop', [CompletionResultType]::ParameterValue, 'Stop a node gracefully')
            [CompletionResult]::new('start', 'start', [CompletionResultType]::ParameterValue, 'Start a stopped node again with its data')
            [CompletionResult]::new('add-node', 'add-node', [CompletionResultType]::ParameterValue, 'Add a node to the dev cluster and give it its share of partitions')
            [CompletionResult]::new('leave', 'leave', [CompletionResultType]::ParameterValue, 'Move a node''s partitions away, then stop it')
            [CompletionResult]::new('partition', 'partition', [CompletionResultType]::ParameterValue, 'Split the network: nodes in different groups cannot reach each other')
            [CompletionResult]::new('heal', 'heal', [CompletionResultType]::ParameterValue, 'Undo `dynamo partition`')
            [CompletionResult]::new('node', 'node', [CompletionResultType]::ParameterValue, 'Run one node in the foreground')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Show a node''s log')
            [CompletionResult]::new('put', 'put', [CompletionResultType]::ParameterValue, 'Write a value')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Read a value (its exact bytes on stdout)')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a key (writes a tombstone)')
            [CompletionResult]::new('resolve', 'resolve', [CompletionResultType]::ParameterValue, 'Collapse a key''s siblings into one value')
            [CompletionResult]::new('ring', 'ring', [CompletionResultType]::ParameterValue, 'Show the ring: partitions, ranges, owners, preference lists')
            [CompletionResult]::new('bucket', 'bucket', [CompletionResultType]::ParameterValue, 'Show or set buckets'' own N, R and W')
            [CompletionResult]::new('keys', 'keys', [CompletionResultType]::ParameterValue, 'List a bucket''s live keys, in a stable order')
            [CompletionResult]::new('merkle', 'merkle', [CompletionResultType]::ParameterValue, 'Show Merkle roots per partition per replica')
            [CompletionResult]::new('repair', 'repair', [CompletionResultType]::ParameterValue, 'Run anti-entropy now, until every replica set agrees')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Load the running cluster and report throughput and latency')
            [CompletionResult]::new('sim', 'sim', [CompletionResultType]::ParameterValue, 'Run a seeded simulated cluster in one process with faults')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dynamo;up' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Number of nodes [default: 5]')
            [CompletionResult]::new('--nodes', '--nodes', [CompletionResultType]::ParameterName, 'Number of nodes [default: 5]')
            [CompletionResult]::new('-N', '-N ', [CompletionResultType]::ParameterName, 'N: replicas per key [default: 3]')
            [CompletionResult]::new('--replicas', '--replicas', [CompletionResultType]::ParameterName, 'N: replicas per key [default: 3]')
            [CompletionResult]::new('-R', '-R ', [CompletionResultType]::ParameterName, 'R: replies a read waits for [default: 2]')
            [CompletionResult]::new('--read-quorum', '--read-quorum', [CompletionResultType]::ParameterName, 'R: replies a read waits for [default: 2]')
            [CompletionResult]::new('-W', '-W ', [CompletionResultType]::ParameterName, 'W: acknowledgements a write waits for [default: 2]')
            [CompletionResult]::new('--write-quorum', '--write-quorum', [CompletionResultType]::ParameterName, 'W: acknowledgements a write waits for [default: 2]')
            [CompletionResult]::new('-Q', '-Q ', [CompletionResultType]::ParameterName, 'Q: partitions of the ring, a power of two [default: 64]')
            [CompletionResult]::new('--partitions', '--partitions', [CompletionResultType]::ParameterName, 'Q: partitions of the ring, a power of two [default: 64]')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'First node''s UDP port, the next ones follow; 0 picks free ports [default: 7101]')
            [CompletionResult]::new('--base-port', '--base-port', [CompletionResultType]::ParameterName, 'First node''s UDP port, the next ones follow; 0 picks free ports [default: 7101]')
            [CompletionResult]::new('--durability', '--durability', [CompletionResultType]::ParameterName, 'How nodes commit writes: `immediate` fsyncs each group commit before acknowledging it; `buffered` fsyncs every flush interval [default: immediate]')
            [CompletionResult]::new('--tombstone-grace-ms', '--tombstone-grace-ms', [CompletionResultType]::ParameterName, 'Milliseconds a deleted key''s tombstone stays before it is collected (once every node holds it); kept for later starts [default: 3600000]')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'Name of a new cluster [default: dynamo-dev]')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Return once the cluster serves, leaving it running')
            [CompletionResult]::new('--detach', '--detach', [CompletionResultType]::ParameterName, 'Return once the cluster serves, leaving it running')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;down' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('--purge', '--purge', [CompletionResultType]::ParameterName, 'Also delete the cluster home and all its data')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;status' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;kill' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;stop' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;start' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;add-node' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'The new node''s name [default: the next free nN]')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;leave' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'The node is down for good: the others take its partitions from the surviving replicas (its folder is kept)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;partition' {
            [CompletionResult]::new('--isolate', '--isolate', [CompletionResultType]::ParameterName, 'Cut one node off from all the others')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;heal' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;node' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The node''s node.toml')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;logs' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Print only the last LINES lines')
            [CompletionResult]::new('--lines', '--lines', [CompletionResultType]::ParameterName, 'Print only the last LINES lines')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Keep printing new lines until Ctrl-C')
            [CompletionResult]::new('--follow', '--follow', [CompletionResultType]::ParameterName, 'Keep printing new lines until Ctrl-C')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;put' {
            [CompletionResult]::new('--bucket', '--bucket', [CompletionResultType]::ParameterName, 'The bucket the key lives in')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'The context token from the read this write is based on')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Read the value from this file')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Send the write to this node as coordinator')
            [CompletionResult]::new('-W', '-W ', [CompletionResultType]::ParameterName, 'W: acknowledgements to wait for [default: the cluster''s W]')
            [CompletionResult]::new('--write-quorum', '--write-quorum', [CompletionResultType]::ParameterName, 'W: acknowledgements to wait for [default: the cluster''s W]')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;get' {
            [CompletionResult]::new('--bucket', '--bucket', [CompletionResultType]::ParameterName, 'The bucket the key lives in')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Send the read to this node as coordinator')
            [CompletionResult]::new('-R', '-R ', [CompletionResultType]::ParameterName, 'R: replies to wait for [default: the cluster''s R]')
            [CompletionResult]::new('--read-quorum', '--read-quorum', [CompletionResultType]::ParameterName, 'R: replies to wait for [default: the cluster''s R]')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('--explain', '--explain', [CompletionResultType]::ParameterName, 'Show how the answer came about: replicas, fallbacks, hints, repair')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document with every sibling and the context')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;delete' {
            [CompletionResult]::new('--bucket', '--bucket', [CompletionResultType]::ParameterName, 'The bucket the key lives in')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'The context token from the read this delete is based on')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;resolve' {
            [CompletionResult]::new('--bucket', '--bucket', [CompletionResultType]::ParameterName, 'The bucket the key lives in')
            [CompletionResult]::new('--pick', '--pick', [CompletionResultType]::ParameterName, 'Keep sibling N (1-based, in the order shown) without asking')
            [CompletionResult]::new('--value', '--value', [CompletionResultType]::ParameterName, 'Write this value without asking')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;ring' {
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Show where this key lives')
            [CompletionResult]::new('--bucket', '--bucket', [CompletionResultType]::ParameterName, 'The bucket of --key (its N gives the preference list)')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('plan', 'plan', [CompletionResultType]::ParameterValue, 'What a membership change would do, before doing it')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dynamo;ring;plan' {
            [CompletionResult]::new('--add', '--add', [CompletionResultType]::ParameterName, 'Plan adding this many nodes')
            [CompletionResult]::new('--remove', '--remove', [CompletionResultType]::ParameterName, 'Plan removing this node')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;ring;help' {
            [CompletionResult]::new('plan', 'plan', [CompletionResultType]::ParameterValue, 'What a membership change would do, before doing it')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dynamo;ring;help;plan' {
            break
        }
        'dynamo;ring;help;help' {
            break
        }
        'dynamo;bucket' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'The default bucket and every bucket with settings of its own')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'One bucket''s N, R and W (the cluster''s when it has none of its own)')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Give a bucket its own N, R or W (N only while it holds no keys)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dynamo;bucket;list' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;bucket;show' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of a line')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;bucket;set' {
            [CompletionResult]::new('-N', '-N ', [CompletionResultType]::ParameterName, 'N: replicas per key')
            [CompletionResult]::new('--replicas', '--replicas', [CompletionResultType]::ParameterName, 'N: replicas per key')
            [CompletionResult]::new('-R', '-R ', [CompletionResultType]::ParameterName, 'R: replies a get waits for')
            [CompletionResult]::new('--read-quorum', '--read-quorum', [CompletionResultType]::ParameterName, 'R: replies a get waits for')
            [CompletionResult]::new('-W', '-W ', [CompletionResultType]::ParameterName, 'W: acknowledgements a put waits for')
            [CompletionResult]::new('--write-quorum', '--write-quorum', [CompletionResultType]::ParameterName, 'W: acknowledgements a put waits for')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of a line')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;bucket;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'The default bucket and every bucket with settings of its own')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'One bucket''s N, R and W (the cluster''s when it has none of its own)')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Give a bucket its own N, R or W (N only while it holds no keys)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dynamo;bucket;help;list' {
            break
        }
        'dynamo;bucket;help;show' {
            break
        }
        'dynamo;bucket;help;set' {
            break
        }
        'dynamo;bucket;help;help' {
            break
        }
        'dynamo;keys' {
            [CompletionResult]::new('--bucket', '--bucket', [CompletionResultType]::ParameterName, 'The bucket')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Stop after this many keys')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document (streamed) instead of one key per line')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;merkle' {
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Only this replica')
            [CompletionResult]::new('--partition', '--partition', [CompletionResultType]::ParameterName, 'Show this partition''s whole tree')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'The key ranges and keys where two replicas differ')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dynamo;merkle;diff' {
            [CompletionResult]::new('--partition', '--partition', [CompletionResultType]::ParameterName, 'Only this partition')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;merkle;help' {
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'The key ranges and keys where two replicas differ')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dynamo;merkle;help;diff' {
            break
        }
        'dynamo;merkle;help;help' {
            break
        }
        'dynamo;repair' {
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Repair only the replica sets this node belongs to')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;bench' {
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'How long to run, in seconds')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Requests in flight at once')
            [CompletionResult]::new('--value-size', '--value-size', [CompletionResultType]::ParameterName, 'Bytes per value written')
            [CompletionResult]::new('--keys', '--keys', [CompletionResultType]::ParameterName, 'Distinct keys used')
            [CompletionResult]::new('--read-ratio', '--read-ratio', [CompletionResultType]::ParameterName, 'Share of operations that are reads, from 0 to 1')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of a table')
            [CompletionResult]::new('--http', '--http', [CompletionResultType]::ParameterName, 'Send the requests over the HTTPS API (one connection per task)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;sim' {
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'The seed; the same seed (and the same other flags) replays the same run exactly [default: random]')
            [CompletionResult]::new('--seeds', '--seeds', [CompletionResultType]::ParameterName, 'Run every seed of a range, A..B (B excluded), in this process; stop at the first failing seed and print the command that replays it')
            [CompletionResult]::new('--nodes', '--nodes', [CompletionResultType]::ParameterName, 'Nodes in the simulated cluster')
            [CompletionResult]::new('--ops', '--ops', [CompletionResultType]::ParameterName, 'Client operations to run (per seed)')
            [CompletionResult]::new('--faults', '--faults', [CompletionResultType]::ParameterName, 'Comma-separated faults to inject [default: drawn from the seed]')
            [CompletionResult]::new('-N', '-N ', [CompletionResultType]::ParameterName, 'N: replicas per key')
            [CompletionResult]::new('--replicas', '--replicas', [CompletionResultType]::ParameterName, 'N: replicas per key')
            [CompletionResult]::new('-R', '-R ', [CompletionResultType]::ParameterName, 'R: replies a read waits for')
            [CompletionResult]::new('--read-quorum', '--read-quorum', [CompletionResultType]::ParameterName, 'R: replies a read waits for')
            [CompletionResult]::new('-W', '-W ', [CompletionResultType]::ParameterName, 'W: acknowledgements a write waits for')
            [CompletionResult]::new('--write-quorum', '--write-quorum', [CompletionResultType]::ParameterName, 'W: acknowledgements a write waits for')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;completions' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The cluster home made by `dynamo up` [default: $XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dynamo;help' {
            [CompletionResult]::new('up', 'up', [CompletionResultType]::ParameterValue, 'Create the cluster home if absent, start the nodes, wait until all serve')
            [CompletionResult]::new('down', 'down', [CompletionResultType]::ParameterValue, 'Stop every node gracefully')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show every node: address, state, partitions, keys, pending hints')
            [CompletionResult]::new('kill', 'kill', [CompletionResultType]::ParameterValue, 'Crash a node (SIGKILL)')
            [CompletionResult]::new('stop', 'stop', [CompletionResultType]::ParameterValue, 'Stop a node gracefully')
            [CompletionResult]::new('start', 'start', [CompletionResultType]::ParameterValue, 'Start a stopped node again with its data')
            [CompletionResult]::new('add-node', 'add-node', [CompletionResultType]::ParameterValue, 'Add a node to the dev cluster and give it its share of partitions')
            [CompletionResult]::new('leave', 'leave', [CompletionResultType]::ParameterValue, 'Move a node''s partitions away, then stop it')
            [CompletionResult]::new('partition', 'partition', [CompletionResultType]::ParameterValue, 'Split the network: nodes in different groups cannot reach each other')
            [CompletionResult]::new('heal', 'heal', [CompletionResultType]::ParameterValue, 'Undo `dynamo partition`')
            [CompletionResult]::new('node', 'node', [CompletionResultType]::ParameterValue, 'Run one node in the foreground')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Show a node''s log')
            [CompletionResult]::new('put', 'put', [CompletionResultType]::ParameterValue, 'Write a value')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Read a value (its exact bytes on stdout)')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a key (writes a tombstone)')
            [CompletionResult]::new('resolve', 'resolve', [CompletionResultType]::ParameterValue, 'Collapse a key''s siblings into one value')
            [CompletionResult]::new('ring', 'ring', [CompletionResultType]::ParameterValue, 'Show the ring: partitions, ranges, owners, preference lists')
            [CompletionResult]::new('bucket', 'bucket', [CompletionResultType]::ParameterValue, 'Show or set buckets'' own N, R and W')
            [CompletionResult]::new('keys', 'keys', [CompletionResultType]::ParameterValue, 'List a bucket''s live keys, in a stable order')
            [CompletionResult]::new('merkle', 'merkle', [CompletionResultType]::ParameterValue, 'Show Merkle roots per partition per replica')
            [CompletionResult]::new('repair', 'repair', [CompletionResultType]::ParameterValue, 'Run anti-entropy now, until every replica set agrees')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Load the running cluster and report throughput and latency')
            [CompletionResult]::new('sim', 'sim', [CompletionResultType]::ParameterValue, 'Run a seeded simulated cluster in one process with faults')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dynamo;help;up' {
            break
        }
        'dynamo;help;down' {
            break
        }
        'dynamo;help;status' {
            break
        }
        'dynamo;help;kill' {
            break
        }
        'dynamo;help;stop' {
            break
        }
        'dynamo;help;start' {
            break
        }
        'dynamo;help;add-node' {
            break
        }
        'dynamo;help;leave' {
            break
        }
        'dynamo;help;partition' {
            break
        }
        'dynamo;help;heal' {
            break
        }
        'dynamo;help;node' {
            break
        }
        'dynamo;help;logs' {
            break
        }
        'dynamo;help;put' {
            break
        }
        'dynamo;help;get' {
            break
        }
        'dynamo;help;delete' {
            break
        }
        'dynamo;help;resolve' {
            break
        }
        'dynamo;help;ring' {
            [CompletionResult]::new('plan', 'plan', [CompletionResultType]::ParameterValue, 'What a membership change would do, before doing it')
            break
        }
        'dynamo;help;ring;plan' {
            break
        }
        'dynamo;help;bucket' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'The default bucket and every bucket with settings of its own')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'One bucket''s N, R and W (the cluster''s when it has none of its own)')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Give a bucket its own N, R or W (N only while it holds no keys)')
            break
        }
        'dynamo;help;bucket;list' {
            break
        }
        'dynamo;help;bucket;show' {
            break
        }
        'dynamo;help;bucket;set' {
            break
        }
        'dynamo;help;keys' {
            break
        }
        'dynamo;help;merkle' {
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'The key ranges and keys where two replicas differ')
            break
        }
        'dynamo;help;merkle;diff' {
            break
        }
        'dynamo;help;repair' {
            break
        }
        'dynamo;help;bench' {
            break
        }
        'dynamo;help;sim' {
            break
        }
        'dynamo;help;completions' {
            break
        }
        'dynamo;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}

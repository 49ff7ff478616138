import LHTTPProtocol
import Logging
import NIOCore

/// Who is subscribed to the channels with presence (`presence: true`), on this node and, through a
/// ``PresenceLink``, on the others; and the `join` / `leave` events of those with `join_leave: true`.
///
/// All state lives on one event loop (``eventLoop``): connections report from theirs with a hop, in their
/// order. Join and leave are per user: a user's first connection anywhere joins; when the last is gone, `leave`
/// goes out after the channel's `leave_grace_s` unless one came back meanwhile (a reload is not a leave). The
/// roster itself changes at once. Events are computed on each node for its own subscribers, from the union of
/// every node's members, so nothing is fanned out node to node.
///
/// In a cluster each node sends its members of a channel when they change (coalesced over
/// ``Configuration/flushDelay``), an `alive` every ``Configuration/heartbeat`` with the count of changes it
/// sent, and its whole state when asked; a receiver that missed a change asks that node for its whole state. A
/// node not heard from for ``Configuration/nodeTimeout`` is gone, and its members with it.
public final class Presence: Sendable {
    public struct Configuration: Sendable {
        /// Members kept per channel and node for the roster; beyond, counts only.
        public var maxMembers: Int
        public var heartbeat: TimeAmount
        public var nodeTimeout: TimeAmount
        public var flushDelay: TimeAmount

        public init(maxMembers: Int = 1000, heartbeat: TimeAmount = .seconds(2), nodeTimeout: TimeAmount = .seconds(6), flushDelay: TimeAmount = .milliseconds(50)) {
            self.maxMembers = maxMembers
            self.heartbeat = heartbeat
            self.nodeTimeout = nodeTimeout
            self.flushDelay = flushDelay
        }
    }

    /// The answer to a `presence:` header.
    public static let presenceCommand = "presence"
    public static let joinCommand = "join"
    public static let leaveCommand = "leave"

    public let eventLoop: any EventLoop
    /// This node in presence messages (`node#nonce`, set by the link's owner, or random).
    public let node: String
    private let access: ChannelAccess
    private let hub: Hub
    private let configuration: Configuration
    private let logger: Logger
    private let observer: (any PresenceObserver)?
    private let state: NIOLoopBoundBox<State>

    /// Another node's members of one channel.
    private struct Remote {
        var members: [PresenceMember]?
        var clients: Int
        var users: Int
        /// User → connections (empty when `members` is nil).
        var userCounts: [String: Int]
    }

    private struct ChannelState {
        var local: [ConnectionID: PresenceMember] = [:]
        /// User → this node's connections.
        var localUsers: [String: Int] = [:]
        var remote: [String: Remote] = [:]
        /// User → connections anywhere (local and remote members).
        var totals: [String: Int] = [:]
        /// Users whose last connection went, waiting out the grace before `leave` (`local`: this node's
        /// connection was the last, so this node reports the removal).
        var leaving: [String: (task: Scheduled<Void>, member: PresenceMember, local: Bool)] = [:]

        var isEmpty: Bool { self.local.isEmpty && self.remote.isEmpty && self.leaving.isEmpty }
        /// Connections anywhere.
        var clients: Int { self.remote.values.reduce(self.local.count) { $0 + $1.clients } }
    }

    private struct NodeState {
        var seq: UInt64
        var lastHeard: NIODeadline
        /// A whole state being received: its id and the channels not listed yet.
        var sync: (id: UInt64, stale: Set<String>)?
    }

    private struct State {
        var channels: [String: ChannelState] = [:]
        var nodes: [String: NodeState] = [:]
        var link: (any PresenceLink)?
        var dirty = Set<String>()
        var flushScheduled = false
        var seq: UInt64 = 0
        var syncCounter: UInt64 = 0
        var fullStateScheduled = false
        var heartbeat: RepeatedTask?
    }

    public init(
        access: ChannelAccess, hub: Hub, eventLoop: any EventLoop, node: String = "node#\(String(UInt32.random(in: 0...UInt32.max), radix: 16))",
        configuration: Configuration = .init(), observer: (any PresenceObserver)? = nil, logger: Logger = Logger(label: "lhttpd.presence")
    ) {
        self.observer = observer
        self.access = access
        self.hub = hub
        self.eventLoop = eventLoop
        self.node = node
        self.configuration = configuration
        self.logger = logger
        self.state = .makeBoxSendingValue(State(), eventLoop: eventLoop)
    }

    /// Whether `channel` keeps presence.
    public func keeps(_ channel: String) -> Bool { self.access.presence(for: channel) != nil }

    // MARK: Local members (from any loop)

    /// `connection` joined `channels` (those with presence count; the others are ignored).
    public func joined(_ connection: @autoclosure () -> ConnectionInfo, channels: [String]) {
        let kept = channels.filter(self.keeps)
        guard !kept.isEmpty else { return }
        let info = connection()
        let member = PresenceMember(info)
        let id = info.id
        self.eventLoop.execute { [self] in
            for channel in kept { self.addLocal(member, id: id, to: channel) }
        }
    }

    /// Connection `id` left `channels`.
    public func left(_ id: ConnectionID, channels: some Sequence<String>) {
        let kept = channels.filter(self.keeps)
        guard !kept.isEmpty else { return }
        self.eventLoop.execute { [self] in
            for channel in kept { self.removeLocal(id, from: channel) }
        }
    }

    /// Who is on `channel` now (nil: it keeps no presence), on the presence loop.
    public func snapshot(of channel: String) -> EventLoopFuture<PresenceSnapshot?> {
        guard self.keeps(channel) else { return self.eventLoop.makeSucceededFuture(nil) }
        return self.eventLoop.submit { [self] in self.currentSnapshot(of: channel) }
    }

    /// Answers `subscriber` with who is on `channel` (an `LHTTP/1.0 presence` message), after everything the
    /// connection did before.
    public func answer(_ subscriber: Subscriber, channel: String) {
        let hub = self.hub
        self.snapshot(of: channel).whenSuccess { snapshot in
            guard let snapshot, let bytes = try? snapshot.message().serialized() else { return }
            hub.send([bytes], to: subscriber)
        }
    }

    // MARK: The cluster (from any thread)

    /// Starts sharing through `link`: asks every node for its state and sends this node's.
    public func attach(_ link: any PresenceLink) {
        self.eventLoop.execute { [self] in
            self.state.value.link = link
            let interval = self.configuration.heartbeat
            self.state.value.heartbeat = self.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
                self.beat()
            }
            self.linkUp()
        }
    }

    /// Stops the heartbeat (the link is going away).
    public func detach() {
        self.eventLoop.execute { [self] in
            self.state.value.heartbeat?.cancel()
            self.state.value.heartbeat = nil
            self.state.value.link = nil
        }
    }

    /// The link (re)connected: what was sent meanwhile may be lost both ways; everyone resends.
    public func linkUp() {
        self.eventLoop.execute { [self] in
            guard let link = self.state.value.link else { return }
            link.send(PresenceUpdate(kind: .sync, node: self.node, seq: self.state.value.seq))
            self.scheduleFullState()
        }
    }

    /// A presence message from another node (checked by the link).
    public func receive(_ update: PresenceUpdate) {
        guard update.node != self.node else { return }
        self.eventLoop.execute { [self] in self.handle(update) }
    }

    // MARK: On the presence loop

    private func addLocal(_ member: PresenceMember, id: ConnectionID, to channel: String) {
        guard self.keeps(channel) else { return }
        var changes: [Change] = []
        var occupied = false
        self.withChannel(channel, creating: true) { cs in
            occupied = cs.clients == 0
            guard cs.local.updateValue(member, forKey: id) == nil else { return }
            if !member.user.isEmpty {
                cs.localUsers[member.user, default: 0] += 1
                Self.count(&cs, user: member.user, by: 1, member: member, except: id, into: &changes)
            }
        }
        self.markDirty(channel)
        if occupied { self.observer?.presenceChanged(PresenceEvent(kind: .channelOccupied, channel: channel, member: member), on: self.eventLoop) }
        self.emit(changes, on: channel, local: true)
    }

    private func removeLocal(_ id: ConnectionID, from channel: String) {
        var changes: [Change] = []
        var vacated: PresenceMember?
        guard self.state.value.channels[channel] != nil else { return }
        self.withChannel(channel, creating: false) { cs in
            guard let member = cs.local.removeValue(forKey: id) else { return }
            if !member.user.isEmpty {
                let left = (cs.localUsers[member.user] ?? 1) - 1
                cs.localUsers[member.user] = left > 0 ? left : nil
                Self.count(&cs, user: member.user, by: -1, member: member, except: nil, into: &changes)
            }
            if cs.clients == 0 { vacated = member }
        }
        self.markDirty(channel)
        self.emit(changes, on: channel, local: true)
        if let vacated { self.observer?.presenceChanged(PresenceEvent(kind: .channelVacated, channel: channel, member: vacated), on: self.eventLoop) }
    }

    /// What a count change leads to: a user is there (`join`, unless it was leaving) or gone (`leave`, after
    /// the grace).
    private enum Change {
        case joined(PresenceMember, except: ConnectionID?)
        case gone(PresenceMember)
    }

    private static func count(_ cs: inout ChannelState, user: String, by delta: Int, member: PresenceMember, except: ConnectionID?, into changes: inout [Change]) {
        let before = cs.totals[user] ?? 0
        let after = max(0, before + delta)
        cs.totals[user] = after > 0 ? after : nil
        if before == 0, after > 0 {
            if let leaving = cs.leaving.removeValue(forKey: user) {
                leaving.task.cancel()  // back within the grace: no leave, no join
            } else {
                changes.append(.joined(member, except: except))
            }
        } else if before > 0, after == 0 {
            changes.append(.gone(member))
        }
    }

    /// Runs `body` on `channel`'s state (made when missing if `creating`), dropping it once empty.
    private func withChannel(_ channel: String, creating: Bool, _ body: (inout ChannelState) -> Void) {
        if self.state.value.channels[channel] == nil {
            guard creating else { return }
            self.state.value.channels[channel] = ChannelState()
        }
        body(&self.state.value.channels[channel]!)
        if self.state.value.channels[channel]!.isEmpty { self.state.value.channels[channel] = nil }
    }

    /// Carries out what count changes led to. `local`: this node's connection caused them (it reports them
    /// to the observer; the other nodes do not).
    private func emit(_ changes: [Change], on channel: String, local: Bool) {
        guard !changes.isEmpty, let options = self.access.presence(for: channel) else { return }
        for change in changes {
            switch change {
            case .joined(let member, let except):
                if options.joinLeave { self.send(Self.joinCommand, member, on: channel, except: except) }
                if local { self.observer?.presenceChanged(PresenceEvent(kind: .memberAdded, channel: channel, member: member), on: self.eventLoop) }
            case .gone(let member):
                guard options.leaveGraceS > 0 else {
                    self.left(member, on: channel, options: options, local: local)
                    continue
                }
                let user = member.user
                let task = self.eventLoop.scheduleTask(in: .nanoseconds(Int64(options.leaveGraceS * 1e9))) { [self] in
                    self.graceEnded(user: user, on: channel)
                }
                self.withChannel(channel, creating: true) { cs in
                    cs.leaving[user]?.task.cancel()
                    cs.leaving[user] = (task, member, local)
                }
            }
        }
    }

    /// A user is gone for good (past the grace): `leave` to the subscribers, the removal to the observer.
    private func left(_ member: PresenceMember, on channel: String, options: ChannelAccess.PresenceOptions, local: Bool) {
        if options.joinLeave { self.send(Self.leaveCommand, member, on: channel, except: nil) }
        if local { self.observer?.presenceChanged(PresenceEvent(kind: .memberRemoved, channel: channel, member: member), on: self.eventLoop) }
    }

    private func graceEnded(user: String, on channel: String) {
        var gone: (member: PresenceMember, local: Bool)?
        self.withChannel(channel, creating: false) { cs in
            guard let leaving = cs.leaving.removeValue(forKey: user), cs.totals[user] == nil else { return }
            gone = (leaving.member, leaving.local)
        }
        if let gone, let options = self.access.presence(for: channel) { self.left(gone.member, on: channel, options: options, local: gone.local) }
    }

    /// `LHTTP/1.0 join|leave` with `channel`, `user`, `conn`, the member's info as body, to `channel`'s
    /// subscribers on this node.
    private func send(_ command: String, _ member: PresenceMember, on channel: String, except: ConnectionID?) {
        var headers = LHTTPHeaders()
        headers.add(name: "channel", value: channel)
        headers.add(name: "user", value: member.user)
        headers.add(name: "conn", value: member.conn)
        let message = LHTTPMessage(command: command, headers: headers, body: ByteBuffer(string: member.info ?? ""))
        guard let bytes = try? message.serialized() else { return }
        self.hub.deliver(bytes, to: [channel], excluding: [], except: except.map { [$0] } ?? [])
    }

    private func currentSnapshot(of channel: String) -> PresenceSnapshot {
        let empty = PresenceSnapshot(channel: channel, clients: 0, users: 0, members: [])
        guard let cs = self.state.value.channels[channel] else { return empty }
        var clients = cs.local.count
        var users = cs.totals.count
        var members: [PresenceMember]? = Array(cs.local.values)
        for remote in cs.remote.values {
            clients += remote.clients
            if let theirs = remote.members {
                members?.append(contentsOf: theirs)
            } else {
                // Counts only: its users beyond the ones last known by name (already in `totals`).
                members = nil
                users += max(0, remote.users - remote.userCounts.count)
            }
        }
        if let list = members, list.count > self.configuration.maxMembers { members = nil }
        return PresenceSnapshot(channel: channel, clients: clients, users: users, members: members?.sorted { ($0.user, $0.conn) < ($1.user, $1.conn) })
    }

    // MARK: Sharing

    private func markDirty(_ channel: String) {
        guard self.state.value.link != nil else { return }
        self.state.value.dirty.insert(channel)
        guard !self.state.value.flushScheduled else { return }
        self.state.value.flushScheduled = true
        self.eventLoop.scheduleTask(in: self.configuration.flushDelay) { [self] in self.flush() }
    }

    /// This node's members of `channel`, as the others get them.
    private func shared(_ channel: String) -> PresenceUpdate.Channel {
        guard let cs = self.state.value.channels[channel] else { return .init(members: [], clients: 0, users: 0) }
        var members = cs.local.count <= self.configuration.maxMembers ? Array(cs.local.values) : nil
        // A roster whose JSON would not fit one message (big `info`s) goes as counts only too.
        if let list = members, list.reduce(0, { $0 + Self.weight(of: $1) }) > Self.chunkBytes { members = nil }
        return .init(members: members, clients: cs.local.count, users: cs.localUsers.count)
    }

    private func flush() {
        self.state.value.flushScheduled = false
        let dirty = self.state.value.dirty
        self.state.value.dirty = []
        guard let link = self.state.value.link, !dirty.isEmpty else { return }
        for chunk in self.chunks(of: dirty) {
            self.state.value.seq += 1
            link.send(PresenceUpdate(kind: .state, node: self.node, seq: self.state.value.seq, channels: chunk))
        }
    }

    /// Channels' shares in messages of at most ~``chunkBytes`` of JSON each (a channel's share is never split).
    private func chunks(of channels: some Sequence<String>) -> [[String: PresenceUpdate.Channel]] {
        var chunks: [[String: PresenceUpdate.Channel]] = []
        var current: [String: PresenceUpdate.Channel] = [:]
        var size = 0
        for channel in channels {
            let share = self.shared(channel)
            let weight = 64 + channel.utf8.count + (share.members ?? []).reduce(0) { $0 + Self.weight(of: $1) }
            if size + weight > Self.chunkBytes, !current.isEmpty {
                chunks.append(current)
                current = [:]
                size = 0
            }
            current[channel] = share
            size += weight
        }
        if !current.isEmpty { chunks.append(current) }
        return chunks
    }

    /// About the JSON bytes of `member` in a presence message.
    private static func weight(of member: PresenceMember) -> Int {
        48 + member.conn.utf8.count + member.user.utf8.count + (member.info?.utf8.count ?? 4)
    }

    /// JSON bytes per presence message between nodes: a quarter of NATS's default max_payload (1 MiB).
    static let chunkBytes = 256 * 1024

    private func scheduleFullState() {
        guard !self.state.value.fullStateScheduled else { return }
        self.state.value.fullStateScheduled = true
        self.eventLoop.scheduleTask(in: self.configuration.flushDelay) { [self] in self.sendFullState() }
    }

    private func sendFullState() {
        self.state.value.fullStateScheduled = false
        guard let link = self.state.value.link else { return }
        self.state.value.syncCounter += 1
        let id = self.state.value.syncCounter
        let mine = self.state.value.channels.filter { !$0.value.local.isEmpty }.keys
        let chunks = self.chunks(of: mine)
        let seq = self.state.value.seq
        if chunks.isEmpty {
            link.send(PresenceUpdate(kind: .full, node: self.node, seq: seq, channels: [:], syncID: id, last: true))
        }
        for (index, chunk) in chunks.enumerated() {
            link.send(PresenceUpdate(kind: .full, node: self.node, seq: seq, channels: chunk, syncID: id, last: index == chunks.count - 1))
        }
    }

    private func beat() {
        guard let link = self.state.value.link else { return }
        link.send(PresenceUpdate(kind: .alive, node: self.node, seq: self.state.value.seq))
        let now = self.eventLoop.now
        for (node, known) in self.state.value.nodes where known.lastHeard + self.configuration.nodeTimeout < now {
            self.logger.info("presence: node gone, its members with it", metadata: ["lhttp.peer": "\(node)"])
            self.forget(node)
        }
    }

    /// Drops every member `node` had.
    private func forget(_ node: String) {
        self.state.value.nodes[node] = nil
        let theirs = self.state.value.channels.filter { $0.value.remote[node] != nil }.keys
        for channel in theirs { self.apply(node, channel, nil) }
    }

    private func handle(_ update: PresenceUpdate) {
        guard self.state.value.link != nil else { return }
        let now = self.eventLoop.now
        let known = self.state.value.nodes[update.node]
        switch update.kind {
        case .alive:
            self.state.value.nodes[update.node, default: NodeState(seq: update.seq, lastHeard: now)].lastHeard = now
            // A node not heard before, or changes missed: its whole state.
            if known == nil || known!.seq != update.seq { self.askForState(of: update.node) }
        case .state:
            if known == nil || update.seq != known!.seq &+ 1 { self.askForState(of: update.node) }
            var node = known ?? NodeState(seq: update.seq, lastHeard: now)
            node.seq = update.seq
            node.lastHeard = now
            self.state.value.nodes[update.node] = node
            for (channel, share) in update.channels ?? [:] { self.apply(update.node, channel, share) }
        case .sync:
            // (An unknown sender is not taken in here: its whole state or its next alive brings it in.)
            if update.target == nil || update.target == self.node { self.scheduleFullState() }
        case .full:
            guard let id = update.syncID else { return }
            var node = known ?? NodeState(seq: update.seq, lastHeard: now)
            if node.sync?.id != id {
                node.sync = (id, Set(self.state.value.channels.filter { $0.value.remote[update.node] != nil }.keys))
            }
            node.lastHeard = now
            node.seq = update.seq
            for channel in (update.channels ?? [:]).keys { node.sync?.stale.remove(channel) }
            let stale = update.last == true ? node.sync?.stale ?? [] : []
            if update.last == true { node.sync = nil }
            self.state.value.nodes[update.node] = node
            for (channel, share) in update.channels ?? [:] { self.apply(update.node, channel, share) }
            for channel in stale { self.apply(update.node, channel, nil) }
        }
    }

    private func askForState(of node: String) {
        self.state.value.link?.send(PresenceUpdate(kind: .sync, node: self.node, seq: self.state.value.seq, target: node))
    }

    /// Replaces what `node` had on `channel` with `share` (nil or empty: nothing).
    private func apply(_ node: String, _ channel: String, _ share: PresenceUpdate.Channel?) {
        guard self.keeps(channel) else { return }
        let share = share.flatMap { $0.clients > 0 ? $0 : nil }
        guard share != nil || self.state.value.channels[channel]?.remote[node] != nil else { return }
        var changes: [Change] = []
        self.withChannel(channel, creating: true) { cs in
            let old = cs.remote.removeValue(forKey: node)
            var counts: [String: Int] = [:]
            var firstMember: [String: PresenceMember] = [:]
            if let share, share.members == nil {
                // Past the sender's member cap: counts only. Its users stay as last known (no leave and join
                // for everyone when a big channel crosses the cap) until it is under the cap again.
                counts = old?.userCounts ?? [:]
            }
            for member in share?.members ?? [] where !member.user.isEmpty {
                counts[member.user, default: 0] += 1
                if firstMember[member.user] == nil { firstMember[member.user] = member }
            }
            if let share {
                cs.remote[node] = Remote(members: share.members, clients: share.clients, users: share.users, userCounts: counts)
            }
            // Additions first: a user still there through this node never passes through zero.
            for (user, count) in counts {
                let delta = count - (old?.userCounts[user] ?? 0)
                if delta > 0 { Self.count(&cs, user: user, by: delta, member: firstMember[user]!, except: nil, into: &changes) }
            }
            for (user, count) in old?.userCounts ?? [:] {
                let delta = (counts[user] ?? 0) - count
                if delta < 0 {
                    let member = old?.members?.first { $0.user == user } ?? PresenceMember(conn: "", user: user, info: nil)
                    Self.count(&cs, user: user, by: delta, member: member, except: nil, into: &changes)
                }
            }
        }
        self.emit(changes, on: channel, local: false)
    }
}

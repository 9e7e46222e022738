public import Foundation
import ParleyEvents
import SQLKit

/// Voice profiles and meetings' voices (`VoiceStore`).
extension SQLStore: VoiceStore {
    @discardableResult
    public func putMeetingVoices(meetingID: String, _ voices: [MeetingVoiceRecord]) async throws
        -> [MeetingVoiceRecord]
    {
        try await transactor.transaction { database in
            let kept = try await database.raw(
                "SELECT speaker, rejected FROM meeting_voices WHERE meeting_id = \(bind: meetingID)"
            ).all()
            var rejected: [String: String] = [:]
            for row in kept {
                rejected[try row.decode(column: "speaker", as: String.self)] = try row.decode(
                    column: "rejected", as: String.self)
            }
            try await database.raw("DELETE FROM meeting_voices WHERE meeting_id = \(bind: meetingID)").run()
            var stored: [MeetingVoiceRecord] = []
            for var voice in voices {
                let refused = voice.rejected.isEmpty ? rejected[voice.speaker] ?? "[]" : try Self.json(voice.rejected)
                voice.rejected = try Self.strings(refused)
                try await database.raw(
                    """
                    INSERT INTO meeting_voices (meeting_id, speaker, kind, vector, speech, rejected)
                    SELECT \(bind: meetingID), \(bind: voice.speaker), \(bind: voice.kind),
                           \(bind: VoiceVector.encode(voice.vector)), \(bind: voice.speech), \(bind: refused)
                    WHERE EXISTS (SELECT 1 FROM meetings WHERE id = \(bind: meetingID))
                    """
                ).run()
                stored.append(voice)
            }
            return stored
        }
    }

    public func meetingVoices(meetingID: String) async throws -> [MeetingVoiceRecord] {
        try await database.raw(
            """
            SELECT speaker, kind, vector, speech, rejected FROM meeting_voices
            WHERE meeting_id = \(bind: meetingID) ORDER BY speaker
            """
        ).all().map { row in
            MeetingVoiceRecord(
                meetingID: meetingID, speaker: try row.decode(column: "speaker", as: String.self),
                kind: try row.decode(column: "kind", as: String.self),
                vector: try VoiceVector.decode(try row.decode(column: "vector", as: String.self)),
                speech: try row.decode(column: "speech", as: Double.self),
                rejected: try Self.strings(try row.decode(column: "rejected", as: String.self)))
        }
    }

    public func rejectVoice(meetingID: String, speaker: String, profileID: String) async throws {
        try await transactor.transaction { database in
            guard
                let row = try await database.raw(
                    """
                    SELECT rejected FROM meeting_voices WHERE meeting_id = \(bind: meetingID) AND speaker = \(bind: speaker)
                    """
                ).first()
            else { return }
            var rejected = try Self.strings(try row.decode(column: "rejected", as: String.self))
            guard !rejected.contains(profileID) else { return }
            rejected.append(profileID)
            try await database.raw(
                """
                UPDATE meeting_voices SET rejected = \(bind: try Self.json(rejected))
                WHERE meeting_id = \(bind: meetingID) AND speaker = \(bind: speaker)
                """
            ).run()
        }
    }

    public func voicePrints(ownerID: String, kind: String) async throws -> [VoicePrintRecord] {
        try await database.raw(
            """
            SELECT p.id, p.name, v.vector, v.samples FROM voice_profiles p
            JOIN voice_prints v ON v.profile_id = p.id
            WHERE p.owner_id = \(bind: ownerID) AND v.kind = \(bind: kind) AND v.samples > 0
            """
        ).all().map { row in
            VoicePrintRecord(
                profileID: try row.decode(column: "id", as: String.self),
                name: try row.decode(column: "name", as: String.self), kind: kind,
                vector: try VoiceVector.decode(try row.decode(column: "vector", as: String.self)),
                samples: try row.decode(column: "samples", as: Int.self))
        }
    }

    public func learnVoice(ownerID: String, name: String, kind: String, vector: [Float], from source: VoiceSource)
        async throws -> VoiceProfileRecord
    {
        let key = SpeakerInfo.nameKey(name)
        let now = Self.milliseconds(Date())
        let lock = isPostgres ? " FOR UPDATE" : ""
        let id = try await transactor.transaction { database in
            try await database.raw(
                """
                INSERT INTO voice_profiles (id, owner_id, name, name_key, created_at, updated_at)
                VALUES (\(bind: Identifiers.voiceProfile()), \(bind: ownerID), \(bind: name), \(bind: key),
                        \(bind: now), \(bind: now))
                ON CONFLICT (owner_id, name_key) DO NOTHING
                """
            ).run()
            guard
                let row = try await database.raw(
                    """
                    SELECT id FROM voice_profiles WHERE owner_id = \(bind: ownerID) AND name_key = \(bind: key)
                    """
                ).first()
            else { throw StoreError.unavailable("the voice profile could not be made") }
            let id = try row.decode(column: "id", as: String.self)
            // One source counts once: naming a speaker twice does not weigh its voice double.
            let sourceKey =
                source.meetingID.map { "meeting:\($0):\(source.speaker ?? "")" } ?? "enrollment:\(UUID().uuidString)"
            let fresh = try await database.raw(
                """
                INSERT INTO voice_sources (profile_id, kind, source, meeting_id)
                VALUES (\(bind: id), \(bind: kind), \(bind: sourceKey), \(bind: source.meetingID))
                ON CONFLICT DO NOTHING RETURNING profile_id
                """
            ).all()
            guard !fresh.isEmpty else { return id }
            try await database.raw(
                """
                INSERT INTO voice_prints (profile_id, kind, vector, samples)
                VALUES (\(bind: id), \(bind: kind), \(bind: VoiceVector.encode([])), 0)
                ON CONFLICT DO NOTHING
                """
            ).run()
            let print = try await database.raw(
                """
                SELECT vector, samples FROM voice_prints WHERE profile_id = \(bind: id) AND kind = \(bind: kind)
                """ + SQLQueryString(lock)
            ).first()
            let samples = try print?.decode(column: "samples", as: Int.self) ?? 0
            let mean = try print.map { try VoiceVector.decode(try $0.decode(column: "vector", as: String.self)) } ?? []
            let updated = Self.mean(mean, weight: samples, vector, weight: 1)
            try await database.raw(
                """
                UPDATE voice_prints SET vector = \(bind: VoiceVector.encode(updated)), samples = \(bind: samples + 1)
                WHERE profile_id = \(bind: id) AND kind = \(bind: kind)
                """
            ).run()
            try await database.raw(
                "UPDATE voice_profiles SET updated_at = \(bind: now) WHERE id = \(bind: id)"
            ).run()
            return id
        }
        guard let profile = try await voiceProfile(id: id, ownerID: ownerID) else {
            throw StoreError.unavailable("the voice profile was deleted meanwhile")
        }
        return profile
    }

    public func voiceProfiles(ownerID: String) async throws -> [VoiceProfileRecord] {
        try await profiles(where: "p.owner_id = \(bind: ownerID)")
    }

    public func voiceProfile(id: String, ownerID: String) async throws -> VoiceProfileRecord? {
        try await profiles(where: "p.owner_id = \(bind: ownerID) AND p.id = \(bind: id)").first
    }

    public func renameVoiceProfile(id: String, ownerID: String, name: String) async throws -> VoiceProfileRecord? {
        let key = SpeakerInfo.nameKey(name)
        let clash = try await database.raw(
            """
            SELECT id FROM voice_profiles WHERE owner_id = \(bind: ownerID) AND name_key = \(bind: key) AND id <> \(bind: id)
            """
        ).first()
        if clash != nil {
            throw StoreError.conflict("another voice profile is called '\(name)'; merge the two instead")
        }
        do {
            try await database.raw(
                """
                UPDATE voice_profiles SET name = \(bind: name), name_key = \(bind: key),
                    updated_at = \(bind: Self.milliseconds(Date()))
                WHERE id = \(bind: id) AND owner_id = \(bind: ownerID)
                """
            ).run()
        } catch {
            // A profile of that name made meanwhile.
            if try await voiceProfiles(ownerID: ownerID).contains(where: {
                $0.id != id && SpeakerInfo.nameKey($0.name) == key
            }
            ) {
                throw StoreError.conflict("another voice profile is called '\(name)'; merge the two instead")
            }
            throw error
        }
        return try await voiceProfile(id: id, ownerID: ownerID)
    }

    public func mergeVoiceProfiles(into target: String, from source: String, ownerID: String) async throws
        -> VoiceProfileRecord?
    {
        guard target != source else { return try await voiceProfile(id: target, ownerID: ownerID) }
        let lock = isPostgres ? " FOR UPDATE" : ""
        let merged = try await transactor.transaction { database -> Bool in
            let owned = try await database.raw(
                """
                SELECT id FROM voice_profiles WHERE owner_id = \(bind: ownerID)
                AND id IN (\(bind: target), \(bind: source))
                """ + SQLQueryString(lock)
            ).all()
            guard owned.count == 2 else { return false }
            var prints: [String: [(vector: [Float], samples: Int)]] = [:]
            for row in try await database.raw(
                """
                SELECT kind, vector, samples FROM voice_prints WHERE profile_id IN (\(bind: target), \(bind: source))
                """
            ).all() {
                prints[try row.decode(column: "kind", as: String.self), default: []].append(
                    (
                        try VoiceVector.decode(try row.decode(column: "vector", as: String.self)),
                        try row.decode(column: "samples", as: Int.self)
                    ))
            }
            try await database.raw("DELETE FROM voice_prints WHERE profile_id IN (\(bind: target), \(bind: source))")
                .run()
            for (kind, parts) in prints {
                var vector: [Float] = []
                var samples = 0
                for part in parts {
                    vector = Self.mean(vector, weight: samples, part.vector, weight: part.samples)
                    samples += part.samples
                }
                try await database.raw(
                    """
                    INSERT INTO voice_prints (profile_id, kind, vector, samples)
                    VALUES (\(bind: target), \(bind: kind), \(bind: VoiceVector.encode(vector)), \(bind: samples))
                    """
                ).run()
            }
            try await database.raw(
                """
                INSERT INTO voice_sources (profile_id, kind, source, meeting_id)
                SELECT \(bind: target), kind, source, meeting_id FROM voice_sources WHERE profile_id = \(bind: source)
                ON CONFLICT DO NOTHING
                """
            ).run()
            try await database.raw("DELETE FROM voice_sources WHERE profile_id = \(bind: source)").run()
            try await database.raw("DELETE FROM voice_profiles WHERE id = \(bind: source)").run()
            try await database.raw(
                "UPDATE voice_profiles SET updated_at = \(bind: Self.milliseconds(Date())) WHERE id = \(bind: target)"
            ).run()
            return true
        }
        return merged ? try await voiceProfile(id: target, ownerID: ownerID) : nil
    }

    public func deleteVoiceProfile(id: String, ownerID: String) async throws -> Bool {
        try await transactor.transaction { database in
            let owned = try await database.raw(
                "SELECT id FROM voice_profiles WHERE id = \(bind: id) AND owner_id = \(bind: ownerID)"
            ).first()
            guard owned != nil else { return false }
            // The prints themselves go (biometric data), not only the name.
            for table in ["voice_prints", "voice_sources"] {
                try await database.raw("DELETE FROM \(unsafeRaw: table) WHERE profile_id = \(bind: id)").run()
            }
            try await database.raw("DELETE FROM voice_profiles WHERE id = \(bind: id)").run()
            return true
        }
    }

    // MARK: Helpers

    private func profiles(where condition: SQLQueryString) async throws -> [VoiceProfileRecord] {
        let rows = try await database.raw(
            """
            SELECT p.id, p.owner_id, p.name, p.created_at, p.updated_at,
                (SELECT COUNT(DISTINCT s.meeting_id) FROM voice_sources s WHERE s.profile_id = p.id) AS meetings
            FROM voice_profiles p WHERE
            """ + " " + condition + " ORDER BY p.name_key"
        ).all()
        // Every profile's prints in one more query (not one per profile).
        var prints: [String: [String: Int]] = [:]
        for row in try await database.raw(
            """
            SELECT v.profile_id, v.kind, v.samples FROM voice_prints v JOIN voice_profiles p ON p.id = v.profile_id
            WHERE v.samples > 0 AND
            """ + " " + condition
        ).all() {
            prints[try row.decode(column: "profile_id", as: String.self), default: [:]][
                try row.decode(column: "kind", as: String.self)] = try row.decode(column: "samples", as: Int.self)
        }
        var profiles: [VoiceProfileRecord] = []
        for row in rows {
            let id = try row.decode(column: "id", as: String.self)
            profiles.append(
                VoiceProfileRecord(
                    id: id, ownerID: try row.decode(column: "owner_id", as: String.self),
                    name: try row.decode(column: "name", as: String.self),
                    createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
                    updatedAt: Self.date(try row.decode(column: "updated_at", as: Int64.self)),
                    meetings: try row.decode(column: "meetings", as: Int.self), prints: prints[id] ?? [:]))
        }
        return profiles
    }

    /// The weighted mean of two means (an empty one has no weight).
    static func mean(_ a: [Float], weight wa: Int, _ b: [Float], weight wb: Int) -> [Float] {
        guard !a.isEmpty, wa > 0, a.count == b.count else { return b }
        let total = Float(wa + wb)
        return zip(a, b).map { ($0 * Float(wa) + $1 * Float(wb)) / total }
    }

    static func strings(_ json: String) throws -> [String] {
        try JSONDecoder().decode([String].self, from: Data(json.utf8))
    }

    static func json(_ values: [String]) throws -> String {
        String(decoding: try JSONEncoder().encode(values), as: UTF8.self)
    }
}

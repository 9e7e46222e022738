import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ParleyEvents
import ParleyJobs
import ParleyPipeline
import ParleyPluginAPI
import ParleyStore

/// `/api/voices`: the signed-in user's voice profiles (the people their meetings recognize):
/// list, enroll from a recording of one person, rename, merge two, delete. Profiles are never exported: no route returns the voice
/// data itself, only names and counts.
struct VoiceRoutes {
    let store: any Store
    let meetings: MeetingService
    /// An enrollment recording is a short one of one person: at most this many bytes.
    static let maxEnrollmentBytes = 32 << 20

    struct ProfileView: ResponseEncodable {
        var id: String
        var name: String
        /// In how many meetings the voice was heard.
        var meetings: Int
        /// Per embedding kind, from how many voices its print was made.
        var prints: [String: Int]
        var createdAt: String
        var updatedAt: String

        init(_ record: VoiceProfileRecord) {
            id = record.id
            name = record.name
            meetings = record.meetings
            prints = record.prints
            createdAt = MeetingEvent.formatTimestamp(record.createdAt)
            updatedAt = MeetingEvent.formatTimestamp(record.updatedAt)
        }

        enum CodingKeys: String, CodingKey {
            case id, name, meetings, prints
            case createdAt = "created_at"
            case updatedAt = "updated_at"
        }
    }
    struct ProfileList: ResponseEncodable { var profiles: [ProfileView] }
    struct Rename: Decodable { var name: String }
    struct Merge: Decodable { var from: String }

    func add(to group: RouterGroup<ParleyRequestContext>) {
        group.get { _, context -> ProfileList in
            let user = try context.requireUser()
            return ProfileList(profiles: try await store.voiceProfiles(ownerID: user.id).map(ProfileView.init))
        }
        group.post { request, context -> EditedResponse<ProfileView> in
            let user = try context.requireUser()
            guard let name = TextRules.required(request.uri.queryParameters.get("name") ?? "", max: 80) else {
                throw APIError.badRequest(
                    "?name= must be 1 to 80 characters, not only spaces", code: "invalid_name")
            }
            let contentType = (request.headers[.contentType] ?? "").lowercased()
            guard contentType.hasPrefix("audio/") || contentType.hasPrefix("application/octet-stream") else {
                throw APIError.unsupportedMediaType(
                    "send the recording as the raw body (audio/*, application/octet-stream)")
            }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: Self.maxEnrollmentBytes)
            } catch {
                throw APIError.tooLarge("an enrollment recording may be at most \(Self.maxEnrollmentBytes >> 20) MB")
            }
            let scratch = try ScratchFolder("upload")
            defer { scratch.remove() }
            let file = scratch.path + "/enrollment.audio"
            try Data(body.readableBytesView).write(to: URL(fileURLWithPath: file))
            let voices: [String: [Float]]
            do {
                voices = try await meetings.processor.pipeline().enrollmentVoices(file: file, logger: context.logger)
            } catch {
                throw APIError(.unprocessableContent, "unreadable_audio", "the recording could not be read as audio")
            }
            let learnt = voices.sorted { $0.key < $1.key }.map {
                ($0.key, VoiceMatcher(kind: $0.key).normalized($0.value))
            }
            .filter { !$0.1.isEmpty }
            var profile: VoiceProfileRecord?
            for (kind, vector) in learnt {
                profile = try await store.learnVoice(
                    ownerID: user.id, name: name, kind: kind, vector: vector, from: VoiceSource())
            }
            guard let profile else {
                throw APIError(
                    .unprocessableContent, "no_voice",
                    "the recording holds too little voiced speech to learn a voice from")
            }
            return EditedResponse(status: .created, response: ProfileView(profile))
        }
        group.get(":id") { _, context -> ProfileView in
            let user = try context.requireUser()
            let id = try context.parameters.require("id")
            guard let profile = try await store.voiceProfile(id: id, ownerID: user.id) else {
                throw APIError.notFound("no voice profile '\(id)'")
            }
            return ProfileView(profile)
        }
        group.patch(":id") { request, context -> ProfileView in
            let user = try context.requireUser()
            let id = try context.parameters.require("id")
            let body = try await request.decode(as: Rename.self, context: context)
            guard let name = TextRules.required(body.name, max: 80) else {
                throw APIError.badRequest("a name must be 1 to 80 characters, not only spaces", code: "invalid_name")
            }
            do {
                guard let profile = try await store.renameVoiceProfile(id: id, ownerID: user.id, name: name) else {
                    throw APIError.notFound("no voice profile '\(id)'")
                }
                return ProfileView(profile)
            } catch let error as StoreError where error.code == .conflict {
                throw APIError.conflict(error.message, code: "name_taken")
            }
        }
        group.post(":id/merge") { request, context -> ProfileView in
            let user = try context.requireUser()
            let id = try context.parameters.require("id")
            let body = try await request.decode(as: Merge.self, context: context)
            guard body.from != id else {
                throw APIError.badRequest("a profile cannot be merged into itself", code: "invalid_merge")
            }
            guard let profile = try await store.mergeVoiceProfiles(into: id, from: body.from, ownerID: user.id) else {
                throw APIError.notFound("no voice profiles '\(id)' and '\(body.from)' of yours")
            }
            return ProfileView(profile)
        }
        group.delete(":id") { _, context -> HTTPResponse.Status in
            let user = try context.requireUser()
            let id = try context.parameters.require("id")
            guard try await store.deleteVoiceProfile(id: id, ownerID: user.id) else {
                throw APIError.notFound("no voice profile '\(id)'")
            }
            return .noContent
        }
    }
}

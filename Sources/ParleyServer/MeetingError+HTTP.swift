public import HTTPTypes
public import Hummingbird

// The one place where the meeting domain's errors become HTTP statuses and the API's envelope,
// for a request (`HTTPResponseError`) and for a refused WebSocket upgrade (`apiError`).

extension MeetingError: HTTPResponseError {
    var status: HTTPResponse.Status {
        if code.isInvalid { return .badRequest }
        switch code {
        case .notFound: return .notFound
        case .forbidden: return .forbidden
        default: return .conflict
        }
    }

    /// The error as the API returns it.
    var apiError: APIError { APIError(status, code.name, message) }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        try apiError.response(from: request, context: context)
    }
}

"""The chat part of the RosettaChat OpenAPI document: workspaces, members, channels, invites, messages,
direct conversations, webhooks and automation, files and message attachments, push devices, external
temporary rooms. Rows as in handlers/rosetta/openapi.py's route table."""

from __future__ import annotations

from handlers.rosetta import channels, devices, direct, files, invites, members, messages, rooms, webhooks, workspaces
from handlers.rosetta.forms import json_schema

API = "/api/v1"
_ULID = {"type": "string", "pattern": r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"}

FORMS = {"WorkspaceForm": workspaces.WORKSPACE, "WorkspaceUpdateForm": workspaces.WORKSPACE_UPDATE,
         "JoinForm": workspaces.JOIN_FORM, "MemberForm": members.MEMBER, "ChannelForm": channels.CHANNEL,
         "ChannelUpdateForm": channels.CHANNEL_UPDATE, "ChannelMemberForm": channels.CHANNEL_MEMBER,
         "InviteForm": invites.INVITE, "MessageForm": messages.MESSAGE, "DirectMessageForm": messages.DIRECT_MESSAGE,
         "MessageEditForm": messages.EDIT, "ConversationForm": direct.OPEN, "RecipientForm": direct.RESOLVE,
         "WebhookForm": webhooks.WEBHOOK, "WebhookUpdateForm": webhooks.WEBHOOK_UPDATE,
         "WebhookMessageForm": webhooks.INCOMING, "DeviceForm": devices.REGISTER, "RoomForm": rooms.CREATE,
         "RoomExtendForm": rooms.EXTEND, "GuestJoinForm": rooms.JOIN, "GuestMessageForm": rooms.GUEST_MESSAGE}


def _upload_form() -> dict:
    """The multipart/form-data body of an upload: the `file` part, and the form's fields as the handler checks
    them. A part is text and cannot be null (a blank one counts as absent); `meta` is the JSON text of an object."""
    schema = json_schema(files.UPLOAD)
    visibility = schema["properties"]["visibility"]
    visibility |= {"type": "string", "enum": list(files.UPLOAD["visibility"].one_of),
                   "description": visibility["description"] + " A blank part counts as absent."}
    schema["properties"] = {
        "file": {"type": "string", "format": "binary",
                 "description": "The file: a part with a `filename` (kept, as `client_name`, only as data). Its "
                                "Content-Type is not trusted: the type is sniffed from the bytes. At most the "
                                "deployment's `[files] max_bytes` (100 MiB by default). Only the first `file` part "
                                "counts."},
        "visibility": visibility,
        "meta": {"type": "object", "examples": [{"album": "trip"}],
                 "description": files.UPLOAD["meta"].description + f" As JSON text of at most "
                                f"{files.UPLOAD['meta'].max_bytes} bytes (UTF-8); anything else (an array, `null`) "
                                "is a 422."},
    }
    schema["required"] = ["file"]
    return schema


# multipart/form-data request bodies: (JSON Schema, {part: its Content-Type when not the default}).
MULTIPART_FORMS = {"FileUploadForm": (_upload_form(), {"meta": "application/json"})}

# Path parameters by (path, name): the same name means different things on different paths.
_WORKSPACE = ("The workspace's id.", _ULID)
_CHANNEL = ("The channel's id.", _ULID)
PATH_PARAMS = {
    "workspace_id": _WORKSPACE, "channel_id": _CHANNEL,
    "message_id": ("The message's id.", _ULID), "conversation_id": ("The conversation's id.", _ULID),
    "webhook_id": ("The webhook's id.", _ULID),
    "file_id": ("The file's id.", _ULID),
    "attachment_id": ("The attachment's id: `attachments[].id` of a message.", _ULID),
    "room_id": ("The room's id (`room_id`).", _ULID),
    "token": ("The invite's token, from its link.", {"type": "string", "maxLength": 200}),
    f"{API}/workspaces/{{id}}": _WORKSPACE,
    f"{API}/workspaces/{{workspace_id}}/channels/{{id}}": _CHANNEL,
    f"{API}/workspaces/{{workspace_id}}/members/{{id}}": ("The member's user id.", {"type": "integer"}),
    f"{API}/workspaces/{{workspace_id}}/invites/{{id}}": ("The invite's id.", _ULID),
    f"{API}/workspaces/{{workspace_id}}/webhooks/{{id}}": ("The webhook's id.", _ULID),
    f"{API}/files/{{id}}": ("The file's id.", _ULID),
    f"{API}/devices/{{id}}": ("The device's id, as registering it answered.", _ULID),
}

_W = API + "/workspaces/{workspace_id}"
_MESSAGES = _W + "/channels/{channel_id}/messages"
_ADMINS = "Owners and admins only (403 for other members)."
_ROLES = ("Roles: `owner`, `admin`, `member`. Admins manage members; only an owner makes or unmakes owners or "
          "removes one; a member may set their own `preferred_language` (sending their current role) and leave. ")
_TRANSLATION = ("Each message is translated into the languages of its readers (a member's `preferred_language` "
                "for the workspace, else the user's): `translation_status` is `pending` until then, `completed`, "
                "`partial` or `failed` after (`translation_error` says which languages failed and why; their "
                "readers see the original), `skipped` with `skip_translation` or when the deployment translates "
                "nothing. `language` is the detected source language. `display_content` is in the reader's "
                "language when a translation exists (`display_source` `translated`), else the original "
                "(`original`); `original_content` is always what the author wrote. An edit translates afresh.")
_MESSAGE_RULES = ("`content` (at most the deployment's limit, 4,000 characters by default) is required unless "
                  "`attachment_ids` names a file. `attachment_ids` (at most 10) are files the author uploaded "
                  "(POST /api/v1/files) that are still staged: not attached to a message yet, not expired, not "
                  "deleted; the post claims them (they are kept from then on, and `attachments` lists them in "
                  "order; an id named twice counts once). Any other id is a 422 `The selected attachment ids is "
                  "invalid.`, and a refused post claims nothing. A message without content has translation_status "
                  "`skipped`. " + _TRANSLATION)
_RANGES = ("`If-None-Match` with the ETag (or `*`) answers 304; one `Range` span answers 206, or 416 when the "
           "file has none of its bytes; any other Range (several spans, another unit) is ignored.")
_PAGED = "A page of them (Laravel's paginator: `data`, `meta`, `links`)."
_CURSOR = ("Laravel's cursor paginator: `links.next` (and `meta.next_cursor`) go on in the list's order, "
           "`links.prev` back. Ids are time-ordered, so paging never repeats or skips a message while others post.")
_PRIVATE_404 = "No such workspace, or a private one the caller is not a member of."
_FILE_404 = ("`File not found.`: no such file, a deleted one, or a private one the caller may not read (they are "
             "not its uploader and may not read a live message it is attached to).")
_ATTACHMENT_404 = ("`Attachment not found.`: no such attachment {kind}, its message is deleted, or the caller may "
                   "not read the message (not {reader}).")
_DOWNLOAD = ("The bytes, streamed, with the Content-Type sniffed at upload, `ETag` (the SHA-256), `Accept-Ranges: "
             "bytes`, `X-Content-Type-Options: nosniff` and `Content-Disposition` (`inline` for images, audio, "
             "video, plain text and PDF; `attachment` for the rest, HTML and SVG included, so nothing the file holds "
             "runs in the API's origin; the name as `filename`, ASCII, and `filename*`).")

ROUTES = [
    ("get", API + "/workspaces", "listWorkspaces", "Workspaces", "List my workspaces",
     (200, "The caller's workspaces, newest first. " + _PAGED, "WorkspaceList"), {"user": True, "query": "page"}),
    ("post", API + "/workspaces", "createWorkspace", "Workspaces", "Create a workspace",
     (201, "Created; the caller is its owner.", "WorkspaceOne"),
     {"user": True, "write": "create", "body": ("WorkspaceForm", "The new workspace."),
      "also": {422: "Invalid data, `The slug has already been taken.`, or visibility `password` without one."}}),
    ("get", API + "/workspaces/{id}", "getWorkspace", "Workspaces", "Show a workspace",
     (200, "The workspace; `role` is the caller's (null for a non-member of a public or password workspace).",
      "WorkspaceOne"), {"user": True, "also": {404: _PRIVATE_404}}),
    ("patch", API + "/workspaces/{id}", "updateWorkspace", "Workspaces", "Change a workspace",
     (200, "Changed (an extension to the spec). Owners only.", "WorkspaceOne"),
     {"user": True, "write": "update", "body": ("WorkspaceUpdateForm", "What to change; absent fields stay."),
      "optional_body": True}),
    ("delete", API + "/workspaces/{id}", "deleteWorkspace", "Workspaces", "Delete a workspace",
     (204, "Deleted with its channels, messages, invites and webhooks (an extension to the spec). Owners only.", None),
     {"user": True, "write": "delete"}),
    ("post", API + "/workspaces/{workspace_id}/join", "joinWorkspace", "Workspaces", "Join a workspace",
     (201, "Joined as a member (an extension to the spec); 200 when the caller was a member already.", "MemberOne"),
     {"user": True, "write": "update", "body": ("JoinForm", "The password of a `password` workspace."),
      "optional_body": True, "also": {200: ("Already a member.", "MemberOne"),
                                      422: "Invalid data, or `The password is incorrect.`"}}),
    ("get", _W + "/members", "listMembers", "Members", "List members",
     (200, "Members, in joining order. " + _PAGED, "MemberList"), {"user": True, "query": "page"}),
    ("put", _W + "/members/{id}", "updateMember", "Members", "Change a member's role or language",
     (200, "Changed. " + _ROLES, "MemberOne"),
     {"user": True, "write": "update", "body": ("MemberForm", "The role, and this workspace's language."),
      "also": {422: "Invalid data, or `The workspace must keep at least one owner.`"}}),
    ("delete", _W + "/members/{id}", "removeMember", "Members", "Remove a member, or leave",
     (204, "Removed (or left). " + _ROLES, None),
     {"user": True, "write": "delete", "also": {422: "`The workspace must keep at least one owner.`"}}),
    ("get", _W + "/channels", "listChannels", "Channels", "List channels",
     (200, "The channels the caller may see: public ones, password ones (`entered` false until joined), private "
           "ones they are in; admins see all.", "ChannelList"), {"user": True}),
    ("post", _W + "/channels", "createChannel", "Channels", "Create a channel",
     (201, "Created. " + _ADMINS, "ChannelOne"),
     {"user": True, "write": "create", "body": ("ChannelForm", "The new channel."),
      "also": {422: "Invalid data, `The slug has already been taken.`, or visibility `password` without one."}}),
    ("put", _W + "/channels/{id}", "updateChannel", "Channels", "Change a channel",
     (200, "Changed. " + _ADMINS, "ChannelOne"),
     {"user": True, "write": "update", "body": ("ChannelUpdateForm", "What to change; absent fields stay."),
      "optional_body": True}),
    ("delete", _W + "/channels/{id}", "deleteChannel", "Channels", "Delete a channel",
     (204, "Deleted with its messages. " + _ADMINS, None), {"user": True, "write": "delete"}),
    ("post", _W + "/channels/{channel_id}/join", "joinChannel", "Channels", "Enter a password channel",
     (200, "The channel, now entered (an extension to the spec).", "ChannelOne"),
     {"user": True, "write": "update", "body": ("JoinForm", "The channel's password."), "optional_body": True,
      "also": {422: "Invalid data, or `The password is incorrect.`"}}),
    ("post", _W + "/channels/{channel_id}/members", "addChannelMember", "Channels", "Let a member into a channel",
     (200, "The member may now enter this private or password channel (an extension to the spec). " + _ADMINS,
      "ChannelOne"),
     {"user": True, "write": "update", "body": ("ChannelMemberForm", "A member of the workspace.")}),
    ("get", _W + "/invites", "listInvites", "Invites", "List invites",
     (200, "Live invites, newest first (their tokens are not shown again). " + _ADMINS + " " + _PAGED, "InviteList"),
     {"user": True, "query": "page"}),
    ("post", _W + "/invites", "createInvite", "Invites", "Create an invite",
     (201, "Created; `token` and `url` are shown this once. " + _ADMINS, "InviteCreated"),
     {"user": True, "write": "create", "body": ("InviteForm", "When it expires."), "optional_body": True}),
    ("delete", _W + "/invites/{id}", "revokeInvite", "Invites", "Revoke an invite",
     (204, "Revoked: the link stops working. " + _ADMINS, None), {"user": True, "write": "delete"}),
    ("get", API + "/invites/{token}", "previewInvite", "Invites", "Preview an invite",
     (200, "What the link leads to, shown before sign-in.", "InvitePreviewOne"),
     {"also": {404: "`This invite link is not valid.`: unknown, revoked or expired."}}),
    ("post", API + "/invites/{token}/accept", "acceptInvite", "Invites", "Accept an invite",
     (201, "The caller joined the workspace; 200 with the same membership when already a member.", "MemberOne"),
     {"user": True, "write": "update", "also": {200: ("Already a member.", "MemberOne"),
                                                 404: "`This invite link is not valid.`"}}),
    ("get", _MESSAGES, "listChannelMessages", "Messages", "List channel messages",
     (200, "Top-level messages newest first, or one thread oldest first, in the reader's language. " + _CURSOR,
      "MessageList"),
     {"user": True, "query": "messages"}),
    ("post", _MESSAGES, "postChannelMessage", "Messages", "Post a channel message",
     (201, "Posted. " + _MESSAGE_RULES, "MessageOne"),
     {"user": True, "write": "create", "body": ("MessageForm", "The message."),
      "also": {403: "The account is inactive, the token lacks the ability, the caller is not a member, or the "
                    "channel needs its password."}}),
    ("get", _MESSAGES + "/{message_id}", "getChannelMessage", "Messages", "Show a channel message",
     (200, "The message (an extension to the spec).", "MessageOne"), {"user": True}),
    ("patch", _MESSAGES + "/{message_id}", "editChannelMessage", "Messages", "Edit a channel message",
     (200, "Edited by its author (an extension to the spec).", "MessageOne"),
     {"user": True, "write": "update", "body": ("MessageEditForm", "The new content.")}),
    ("delete", _MESSAGES + "/{message_id}", "deleteChannelMessage", "Messages", "Delete a channel message",
     (204, "Deleted by its author or an admin (an extension to the spec).", None), {"user": True, "write": "delete"}),
    ("post", API + "/automation/workspaces/{workspace_id}/channels/{channel_id}/messages", "postAutomationMessage",
     "Automation", "Post as automation",
     (201, "Posted; its author kind is `automation`. " + _MESSAGE_RULES, "MessageOne"),
     {"user": True, "ability": "automation:post", "write": "create", "body": ("MessageForm", "The message.")}),
    ("get", API + "/direct-conversations", "listConversations", "Direct Chat", "List direct conversations",
     (200, "The caller's conversations, most recent activity first, each with the other participant, the last "
           "message and how many of the other's messages are unread. " + _PAGED, "ConversationList"),
     {"user": True, "query": "page"}),
    ("post", API + "/direct-conversations", "openConversation", "Direct Chat", "Open a direct conversation",
     (201, "Opened; 200 with the same conversation when the pair has one (whoever opened it).", "ConversationOne"),
     {"user": True, "write": "update", "body": ("ConversationForm", "The other user."),
      "also": {200: ("The pair's conversation, open already.", "ConversationOne"),
               422: "Invalid data: not an active user, or the caller."}}),
    ("post", API + "/direct-recipients/resolve", "resolveRecipient", "Direct Chat", "Find a recipient by email",
     (200, "The registered, active user with this email (any case).", "RecipientOne"),
     {"user": True, "throttle": True, "body": ("RecipientForm", "The address."),
      "also": {404: "No such user (the answer takes as long either way)."}}),
    ("get", API + "/direct-conversations/{conversation_id}/messages", "listDirectMessages", "Direct Chat",
     "List direct messages", (200, "Newest first, in the reader's language; reading moves the caller's read mark. "
                              + _CURSOR, "MessageList"),
     {"user": True, "query": "messages"}),
    ("post", API + "/direct-conversations/{conversation_id}/messages", "postDirectMessage", "Direct Chat",
     "Send a direct message", (201, "Sent. " + _MESSAGE_RULES, "MessageOne"),
     {"user": True, "write": "create", "body": ("DirectMessageForm", "The message.")}),
    ("get", _W + "/webhooks", "listWebhooks", "Webhooks", "List webhooks",
     (200, "The workspace's incoming webhooks (secrets are not shown again). " + _ADMINS, "WebhookList"),
     {"user": True}),
    ("post", _W + "/webhooks", "createWebhook", "Webhooks", "Create a webhook",
     (201, "Created, with its own bot user; `secret` is shown this once. " + _ADMINS, "WebhookSecretOne"),
     {"user": True, "write": "create", "body": ("WebhookForm", "The webhook."),
      "also": {422: "Invalid data, or a default channel that is not one of this workspace's."}}),
    ("put", _W + "/webhooks/{id}", "updateWebhook", "Webhooks", "Change a webhook",
     (200, "Changed; with `regenerate_secret` the webhook also carries the new `secret`, shown this once. " + _ADMINS,
      "WebhookOne"),
     {"user": True, "write": "update", "body": ("WebhookUpdateForm", "What to change; absent fields stay."),
      "optional_body": True}),
    ("delete", _W + "/webhooks/{id}", "deleteWebhook", "Webhooks", "Delete a webhook",
     (204, "Deleted; its posts stay, by its bot user. " + _ADMINS, None), {"user": True, "write": "delete"}),
    ("post", API + "/webhooks/{webhook_id}/messages", "postWebhookMessage", "Webhooks", "Post through a webhook",
     (201, "Posted as the webhook (author kind `webhook`, named as the webhook).", "MessageOne"),
     {"webhook": True, "write": "create", "throttle": True, "body": ("WebhookMessageForm", "The message."),
      "also": {401: "No secret, or the wrong one.", 403: "The webhook is inactive.", 404: "No such webhook.",
               422: "Invalid data, or a channel that is not one of the webhook's workspace."}}),
    ("post", API + "/files", "uploadFile", "Files", "Upload a file",
     (201, "Staged: the caller's until a message claims it (`attachment_ids`), and deleted at `expires_at` if none "
           "does.", "FileOne"),
     {"user": True, "guest_too": True, "write": "create",
      "multipart": ("FileUploadForm", "The file, and how it may be read."),
      "also": {413: "The file is larger than the deployment's `[files] max_bytes` (100 MiB by default): refused as "
                    "soon as the declared length or the stream passes it.",
               422: "Invalid data: no `file` part (a body that is not multipart/form-data, say), a malformed "
                    "multipart body, a `visibility` other than `public` or `private`, a `meta` that is not a JSON "
                    "object or is too long, or a reused Idempotency-Key."}}),
    ("get", API + "/files/{id}", "getFile", "Files", "Show file metadata",
     (200, "The file.", "FileOne"), {"user": True, "guest_too": True, "also": {404: _FILE_404}}),
    ("delete", API + "/files/{id}", "deleteFile", "Files", "Delete a file",
     (204, "Deleted; its bytes are removed from the store after the commit.", None),
     {"user": True, "write": "delete",
      "also": {403: "The account is inactive, the token lacks the ability, or the caller is not the uploader (a "
                    "reader of a public or attached file).",
               404: _FILE_404,
               409: "The file is attached to a live message; delete the message first."}}),
    ("get", API + "/files/{file_id}/download", "downloadFile", "Files", "Download a file",
     (200, _DOWNLOAD, None), {"user": True, "guest_too": True, "download": True, "also": {404: _FILE_404}}),
    ("get", API + "/me/files", "listMyFiles", "Me", "List my files",
     (200, "The caller's live files: attached ones (`claimed` true, the default) or staged ones, newest first "
           "unless `sort` says otherwise. " + _PAGED + " The page links keep the filters.", "FileList"),
     {"user": True, "query": "files"}),
    ("get", API + "/message-attachments/{attachment_id}/download", "downloadMessageAttachment", "Messages",
     "Download a channel message's attachment", (200, _DOWNLOAD, None),
     {"user": True, "guest_too": True, "download": True,
      "also": {404: _ATTACHMENT_404.format(kind="of a channel message",
                                           reader="a member who may enter its channel")}}),
    ("get", API + "/direct-message-attachments/{attachment_id}/download", "downloadDirectMessageAttachment",
     "Direct Chat", "Download a direct message's attachment", (200, _DOWNLOAD, None),
     {"user": True, "download": True,
      "also": {404: _ATTACHMENT_404.format(kind="of a direct message", reader="a participant")}}),
    ("post", API + "/devices", "registerAPushDevice", "Devices", "Register a push device",
     (201, "The device, registered or refreshed (the raw token is never shown).", "DeviceOne"),
     {"user": True, "write": "update", "body": ("DeviceForm", "The device and its push token."),
      "also": {422: "Invalid data: a platform or provider not listed, a token that is not the provider's kind, or "
                    "a provider that does not reach the platform (`apns` is `ios` only, `expo` `ios` and `android`)."}}),
    ("delete", API + "/devices/{id}", "unregisterAPushDevice", "Devices", "Unregister a push device",
     (204, "Removed; it gets no more notifications.", None),
     {"user": True, "write": "delete", "also": {404: "`Device not found.`: no such device, or another user's."}}),
    ("get", API + "/me/devices", "listMyPushDevices", "Me", "List my push devices",
     (200, "The caller's devices, most recently used first unless `sort` says otherwise. " + _PAGED
      + " The page links keep the filters.", "DeviceList"),
     {"user": True, "query": "devices"}),
]

_ROOMS = API + "/external/rooms"
_ROOM = _ROOMS + "/{room_id}"
_GUEST_READS = ("Every message of the room, the owner's and other guests' too, in the guest's `preferred_language` "
                "(`display_content`, `display_source`); guests' messages have author kind `guest` and the nickname "
                "as the author's name. ")
_ROOM_404 = "`Temporary Room not found.`: no such room, or another owner's."
_GUEST_401 = "No `X-Rosetta-Guest-Token`, or one that is unknown or of another room."
_QUOTA = ("`Temporary Room active room limit exceeded.` or `Temporary Room monthly creation limit exceeded.` "
          "(`errors.code`: `temporary_room_quota_exceeded`); or the token lacks the ability, or is a session "
          "(`Invalid ability provided.`, no `errors`).")
ROUTES += [
    ("post", _ROOMS, "createATemporaryRoom", "External Temporary Rooms", "Create a Temporary Room",
     (201, "Created: a workspace of its own with one channel (kind `temporary_room`), owned by the caller, open to "
           "guests until `expires_at`.", "RoomOne"),
     {"user": True, "ability": "temporary-rooms:create", "write": "create", "body": ("RoomForm", "The room."),
      "also": {403: ("Quota exceeded. " + _QUOTA, "Forbidden"),
               422: "Invalid data, or `ttl_hours` over the owner's limit (`errors.ttl_hours`: "
                    "`ttl_hours_exceeds_limit`)."}}),
    ("get", _ROOMS, "listDeveloperOwnedTemporaryRooms", "External Temporary Rooms",
     "List developer-owned Temporary Rooms",
     (200, "The caller's rooms, newest first. " + _PAGED + " The page links keep the filter.", "RoomList"),
     {"user": True, "ability": "temporary-rooms:read", "query": "rooms"}),
    ("get", _ROOMS + "/usage", "showTemporaryRoomUsageSummary", "External Temporary Rooms",
     "Show Temporary Room usage summary",
     (200, "The caller's limits, their active rooms and rooms created this calendar month (UTC), and whether "
           "either limit is reached.", "RoomUsageOne"),
     {"user": True, "ability": "temporary-rooms:read"}),
    ("get", _ROOM, "showATemporaryRoom", "External Temporary Rooms", "Show a Temporary Room",
     (200, "One of the caller's rooms (an extension to the spec; where a 202 create's Location points).", "RoomOne"),
     {"user": True, "ability": "temporary-rooms:read", "also": {404: _ROOM_404}}),
    ("post", _ROOM + "/extend", "extendATemporaryRoom", "External Temporary Rooms", "Extend a Temporary Room",
     (200, "Extended: `expires_at` moved out by `extension_hours`; guests' tokens last as long.", "RoomExtendedOne"),
     {"user": True, "ability": "temporary-rooms:extend", "write": "update",
      "body": ("RoomExtendForm", "How long to extend by."), "optional_body": True,
      "also": {403: ("`Temporary Room extension is not allowed.` (`errors.code`: "
                     "`temporary_room_extension_not_allowed`): the owner's limits allow no extension; or the token "
                     "lacks the ability, or is a session (`Invalid ability provided.`, no `errors`).", "Forbidden"),
               404: _ROOM_404,
               410: ("`Temporary Room is not available.` (`errors.code`: `temporary_room_expired`): the room has "
                     "expired.", "CodedError"),
               422: "Invalid data, or an extension longer than the owner's single-extension limit or past "
                    "`max_expires_at` (`errors.extension_hours`: `extension_hours_exceeds_limit`)."}}),
    ("post", _ROOM + "/guests", "joinATemporaryRoomAsAGuest", "External Temporary Rooms",
     "Join a Temporary Room as a guest",
     (201, "Joined: a guest of its own and its one session token, shown this once. Send it as "
           "`X-Rosetta-Guest-Token`; it is good in this room until the room expires.", "GuestJoinedOne"),
     {"body": ("GuestJoinForm", "The guest's nickname and language."), "throttle": True,
      "also": {404: "`Temporary Room not found.`",
               410: ("`Temporary Room is not available.` (`errors.code`: `temporary_room_expired`).", "CodedError")}}),
    ("get", _ROOM + "/messages", "listGuestVisibleRoomMessages", "External Temporary Rooms",
     "List guest-visible room messages",
     (200, _GUEST_READS + "Top-level messages newest first, or one thread oldest first. " + _CURSOR, "MessageList"),
     {"guest": True, "query": "messages", "also": {401: _GUEST_401, 404: "`Temporary Room not found.`"}}),
    ("post", _ROOM + "/messages", "sendAGuestRoomMessage", "External Temporary Rooms", "Send a guest room message",
     (201, "Posted by the guest (author kind `guest`). " + _MESSAGE_RULES + " A guest attaches files it uploaded "
           "itself with its guest token (POST /api/v1/files).", "MessageOne"),
     {"guest": True, "write": "create", "body": ("GuestMessageForm", "The message."), "optional_body": True,
      "also": {401: _GUEST_401, 404: "`Temporary Room not found.`"}}),
    ("get", _ROOM + "/messages/{message_id}", "showAGuestRoomMessage", "External Temporary Rooms",
     "Show a guest room message",
     (200, "One message of the room as the guest reads it (an extension to the spec; where a 202 send's Location "
           "points).", "MessageOne"),
     {"guest": True, "also": {401: _GUEST_401, 404: "`Temporary Room not found.` or `Message not found.`"}}),
]

DESCRIPTIONS = {
    "createWorkspace": "Visibility: `public` (anyone signed in may see and join it), `private` (members only, by "
                       "invite) or `password` (anyone may see it; joining takes its password, kept as a bcrypt hash).",
    "getWorkspace": "A non-member never learns that a private workspace exists: it is a 404 as for any unknown id.",
    "openConversation": "One conversation per pair of users.",
    "postAutomationMessage": "Only a token minted with the `automation:post` ability (POST /api/v1/me/tokens); every "
                             "other token and sessions get 403 `Invalid ability provided.`",
    "postWebhookMessage": "Authenticated by the webhook's secret: `X-Webhook-Secret: <secret>`, or "
                          "`Authorization: Bearer <secret>`; compared in constant time. Limited per webhook.",
    "resolveRecipient": "Limited per user and per client IP.",
    "uploadFile": "The multipart body streams to the store as it arrives. The file's type is sniffed from its "
                  "bytes (`mime_type`), never taken from the client; its name is kept only as `client_name`. "
                  "Attach it by naming its id in a message's `attachment_ids` before `expires_at` (the "
                  "deployment's `[files] staged_ttl_s` after the upload, a day by default).",
    "getFile": "Readable by its uploader; a `public` file by anyone signed in; a `private` one also by whoever may "
               "read a live message it is attached to.",
    "deleteFile": "The uploader only, and only while no live message has it attached.",
    "downloadFile": "Readable as for the metadata. " + _RANGES,
    "listMyFiles": "Only the caller's own uploads, never deleted ones.",
    "registerAPushDevice": "The push token is the identity: sending it again (do, on every app launch) refreshes "
                           "`last_used_at` and answers 201 with the same device; sending it from another account "
                           "moves the device there, so a phone handed on never gets the last owner's messages. "
                           "Fields left out of a refresh stay as they were. A new token with the `device_id` of one "
                           "the user has for the same provider replaces it. A user keeps the 50 most recently used "
                           "devices (the deployment's `[push] max_devices_per_user`). The token is stored sealed "
                           "(encrypted) with a keyed hash for look-ups, and never shown or logged. Each new message "
                           "is pushed to the devices of its readers other than its author, in each reader's "
                           "language: channel messages to the workspace's members who may enter the channel, direct "
                           "messages to the other participant; inactive users get none. The notification's data "
                           "carries `type` (`message`), `message_id`, `workspace_id` and `channel_id`, or "
                           "`conversation_id` for a direct message, for deep links.",
    "unregisterAPushDevice": "Only the device's owner; another user's device is a 404 as for an unknown id.",
    "listMyPushDevices": "Raw push tokens are never returned.",
    "downloadMessageAttachment": "Whoever may read the message's channel, whatever the file's visibility. "
                                 + _RANGES,
    "downloadDirectMessageAttachment": "The conversation's participants, whatever the file's visibility. "
                                       + _RANGES,
    "createATemporaryRoom": "Requires a Sanctum API token with `temporary-rooms:create` (or `*`). `ttl_hours` "
                            "defaults to the deployment's 24 and may be at most the owner's `max_ttl_hours` (and "
                            "lifetime). Quotas, decided as the room is written, so parallel creates never pass them: "
                            "`active_limit` rooms open at once, `monthly_creation_limit` rooms created a calendar "
                            "month (UTC). `max_expires_at` is the creation plus the owner's `max_lifetime_hours`. "
                            "`join.endpoint` is where guests join, from the deployment's `[rooms] public_base_url`. "
                            "At `expires_at` the room closes: joins, guest reads and guest posts answer 410, guests' "
                            "tokens are revoked, and `[rooms] purge_after_hours` later its messages, translations, "
                            "files and guests are deleted.",
    "listDeveloperOwnedTemporaryRooms": "Requires a Sanctum API token with `temporary-rooms:read` (or `*`). "
                                        "`status` is `expired` from the moment `expires_at` passes.",
    "showTemporaryRoomUsageSummary": "Requires a Sanctum API token with `temporary-rooms:read` (or `*`). The limits "
                                     "are the deployment's `[rooms]` defaults unless an operator set the owner's own "
                                     "(`python app.py rooms limits`).",
    "showATemporaryRoom": "Requires a Sanctum API token with `temporary-rooms:read` (or `*`).",
    "extendATemporaryRoom": "Requires a Sanctum API token with `temporary-rooms:extend` (or `*`) and limits that "
                            "allow extensions (`extension_hours` above 0). `extension_hours` defaults to the owner's "
                            "single-extension max; the new `expires_at` may not pass `max_expires_at`.",
    "joinATemporaryRoomAsAGuest": "Open to anyone with the room's id (the developer hands out `join.endpoint`). "
                                  "`nickname` is trimmed, 1 to 64 characters. The guest is a restricted identity: it "
                                  "reads and posts in this room only, and uploads files for it with its token. "
                                  "Limited per room and per client IP.",
    "listGuestVisibleRoomMessages": "Requires `X-Rosetta-Guest-Token`. An unknown room is a 404 and an expired one "
                                    "a 410 whatever the token.",
    "sendAGuestRoomMessage": "Requires `X-Rosetta-Guest-Token`. The message is translated into the languages of the "
                             "room's readers like any channel message.",
    "showAGuestRoomMessage": "Requires `X-Rosetta-Guest-Token`.",
}

# OpenAPI links: where the id a create answers with can be used next.
LINKS = {
    "createWorkspace": {"getWorkspace": {"id": "$response.body#/data/id"},
                        "createChannel": {"workspace_id": "$response.body#/data/id"},
                        "listMembers": {"workspace_id": "$response.body#/data/id"}},
    "createChannel": {"postChannelMessage": {"workspace_id": "$response.body#/data/workspace_id",
                                             "channel_id": "$response.body#/data/id"},
                      "listChannelMessages": {"workspace_id": "$response.body#/data/workspace_id",
                                              "channel_id": "$response.body#/data/id"}},
    "createInvite": {"previewInvite": {"token": "$response.body#/data/token"},
                     "acceptInvite": {"token": "$response.body#/data/token"}},
    "openConversation": {"postDirectMessage": {"conversation_id": "$response.body#/data/id"},
                         "listDirectMessages": {"conversation_id": "$response.body#/data/id"}},
    "createWebhook": {"postWebhookMessage": {"webhook_id": "$response.body#/data/id"}},
    "createATemporaryRoom": {"showATemporaryRoom": {"room_id": "$response.body#/data/room_id"},
                             "extendATemporaryRoom": {"room_id": "$response.body#/data/room_id"},
                             "joinATemporaryRoomAsAGuest": {"room_id": "$response.body#/data/room_id"}},
    "uploadFile": {"getFile": {"id": "$response.body#/data/id"},
                   "downloadFile": {"file_id": "$response.body#/data/id"},
                   "deleteFile": {"id": "$response.body#/data/id"}},
}

TAGS = ("Workspaces", "Members", "Channels", "Invites", "Messages", "Automation", "Direct Chat", "Webhooks",
        "Files", "Devices", "External Temporary Rooms")


# Realtime (docs/realtime.md): extensions to the spec, which has no realtime path.
_REALTIME = API + "/realtime"
_REALTIME_DOC = ("Events of what the caller reads, in this dialect's shapes (ULID ids, integer user ids); a guest "
                 "token sees its room's only. See docs/realtime.md for the frames, resume and resync.")
_TICKET = ("ticket", "A single-use ticket from POST /api/v1/realtime/tickets, instead of a header (browsers cannot "
                     "set one). Never a long-lived token in a URL.", {"type": "string", "maxLength": 100})
_LAST_TS = ("last_ts", "The ts (Unix ms) of the last event received: resync_required lists the channels with "
                       "activity since.", {"type": "integer", "minimum": 0})
REALTIME_QUERY = {
    "realtime": [_TICKET, ("epoch", "Resume: the epoch of the last event received.",
                           {"type": "string", "pattern": "^[0-9A-Za-z_-]{1,64}$"}),
                 ("last_seq", "Resume: the seq of the last event received.", {"type": "integer", "minimum": 0}),
                 _LAST_TS],
    "realtime-sse": [_TICKET, ("last_event_id", "As the Last-Event-ID header: `<epoch>:<seq>` of the last event.",
                               {"type": "string", "maxLength": 100}), _LAST_TS],
}
ROUTES += [
    ("get", _REALTIME, "openRealtime", "Realtime", "Realtime events over a WebSocket",
     (200, "Not an upgrade: the session's opening frames (hello, the replay or resync_required) as a finite "
           "event stream.", "events"),
     {"user": True, "guest_too": True, "sessionless": True, "query": "realtime",
      "description": "Upgrade to a WebSocket (auth: a bearer token or X-Rosetta-Guest-Token on the upgrade, "
                     "`?ticket=`, or a first frame `{\"type\": \"auth\", \"token\"}`); close codes 4001 "
                     "auth_failed, 4003 forbidden, 4008 slow_consumer, 4009 token_revoked, 4029 rate_limited, 1012 "
                     "restart. " + _REALTIME_DOC,
      "also": {101: ("Switching Protocols: the WebSocket is open.", None),
               400: "An upgrade with a broken handshake (Sec-WebSocket-Key, -Version)."}}),
    ("get", _REALTIME + "/events", "streamRealtimeEvents", "Realtime", "Realtime events as server-sent events",
     (200, "With Accept: text/event-stream, the live stream (`id: <epoch>:<seq>`, `event: <type>`, `data: <frame>`, "
           "a comment heartbeat every realtime.sse_heartbeat_s); without, the opening frames only.", "events"),
     {"user": True, "guest_too": True, "sessionless": True, "query": "realtime-sse", "description": _REALTIME_DOC}),
    ("post", _REALTIME + "/tickets", "createRealtimeTicket", "Realtime", "A single-use realtime ticket",
     (201, "The ticket, good for one connection within `expires_in` seconds.", "RealtimeTicketOne"),
     {"user": True, "guest_too": True, "description": "For clients that cannot send headers (EventSource, "
                                                      "browsers' WebSocket)."}),
]

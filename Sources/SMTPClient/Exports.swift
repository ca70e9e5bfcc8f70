// The client's API speaks in SMTPCore's and MailCore's types (SMTPReply, ForwardPath, EmailAddress…);
// importing SMTPClient alone is enough to use them.
@_exported import MailCore
@_exported import SMTPCore

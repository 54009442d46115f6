//! HTTP plumbing shared by the endpoints: cookies and the browser identity, responses.
pub mod browser;
pub mod client_request;
pub mod response;

// Two remote calls on behalf of the logged-in user: an OnPremise
// destination with principal propagation (through the Connectivity proxy
// and the Cloud Connector) and an Internet destination with
// OAuth2ClientCredentials (a token of the user's tenant).
@requires: 'authenticated-user'
service ProbeService {
  function onPremise() returns LargeString;
  function internet()  returns LargeString;
}

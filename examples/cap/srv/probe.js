const cds = require('@sap/cds')

module.exports = class ProbeService extends cds.ApplicationService {
  init() {
    this.on('onPremise', async () => JSON.stringify(await (await cds.connect.to('erp')).get('/who')))
    this.on('internet', async () => JSON.stringify(await (await cds.connect.to('app')).get('/read')))
    return super.init()
  }
}

// Private networking (main.bicep `privateNetworking`): a virtual network that the Function app joins for its
// outbound traffic, and private endpoints that give Key Vault and the storage account's blob, queue and
// table services addresses inside it. keyvault.bicep and storage.bicep then turn their public endpoints off.
// The app itself stays reachable over HTTPS: Event Grid delivers blob events to its webhook, callers use
// its API with function keys.
param location string
param tags object
param virtualNetworkName string

@description('Address space of the virtual network (a /24 or larger): the first /25 is the app\'s integration subnet, the third /26 holds the private endpoints.')
param addressPrefix string

param keyVaultName string
param keyVaultId string
param storageAccountName string
param storageAccountId string

var integrationSubnetPrefix = cidrSubnet(addressPrefix, 25, 0)
var endpointsSubnetPrefix = cidrSubnet(addressPrefix, 26, 2)

// No inbound rule beyond Azure's defaults: nothing from the internet reaches either subnet.
resource nsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: 'nsg-${virtualNetworkName}'
  location: location
  tags: tags
  properties: { securityRules: [] }
}

resource virtualNetwork 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: virtualNetworkName
  location: location
  tags: tags
  properties: {
    addressSpace: { addressPrefixes: [addressPrefix] }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: integrationSubnetPrefix
          networkSecurityGroup: { id: nsg.id }
          // Flex Consumption apps join a virtual network through a subnet delegated to Microsoft.App/environments.
          delegations: [{ name: 'flex-consumption', properties: { serviceName: 'Microsoft.App/environments' } }]
          // The app still calls public services (Entra ID, Application Insights, Microsoft Graph). Put a NAT
          // gateway or a firewall on this subnet to pin or filter that egress.
          defaultOutboundAccess: true
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: endpointsSubnetPrefix
          networkSecurityGroup: { id: nsg.id }
          defaultOutboundAccess: false
        }
      }
    ]
  }
}

resource appSubnet 'Microsoft.Network/virtualNetworks/subnets@2024-05-01' existing = {
  parent: virtualNetwork
  name: 'app'
}

resource endpointsSubnet 'Microsoft.Network/virtualNetworks/subnets@2024-05-01' existing = {
  parent: virtualNetwork
  name: 'private-endpoints'
}

// The vault's privatelink zone follows the cloud's vault suffix (.vault.azure.net -> privatelink.vaultcore.azure.net).
module vaultEndpoint 'private-endpoint.bicep' = {
  name: 'private-endpoint-vault'
  params: {
    location: location
    tags: tags
    name: 'pe-${keyVaultName}-vault'
    targetResourceId: keyVaultId
    groupId: 'vault'
    dnsZoneName: 'privatelink${replace(environment().suffixes.keyvaultDns, '.vault.', '.vaultcore.')}'
    subnetId: endpointsSubnet.id
    virtualNetworkId: virtualNetwork.id
  }
}

module blobEndpoint 'private-endpoint.bicep' = {
  name: 'private-endpoint-blob'
  params: {
    location: location
    tags: tags
    name: 'pe-${storageAccountName}-blob'
    targetResourceId: storageAccountId
    groupId: 'blob'
    dnsZoneName: 'privatelink.blob.${environment().suffixes.storage}'
    subnetId: endpointsSubnet.id
    virtualNetworkId: virtualNetwork.id
  }
}

module queueEndpoint 'private-endpoint.bicep' = {
  name: 'private-endpoint-queue'
  params: {
    location: location
    tags: tags
    name: 'pe-${storageAccountName}-queue'
    targetResourceId: storageAccountId
    groupId: 'queue'
    dnsZoneName: 'privatelink.queue.${environment().suffixes.storage}'
    subnetId: endpointsSubnet.id
    virtualNetworkId: virtualNetwork.id
  }
}

module tableEndpoint 'private-endpoint.bicep' = {
  name: 'private-endpoint-table'
  params: {
    location: location
    tags: tags
    name: 'pe-${storageAccountName}-table'
    targetResourceId: storageAccountId
    groupId: 'table'
    dnsZoneName: 'privatelink.table.${environment().suffixes.storage}'
    subnetId: endpointsSubnet.id
    virtualNetworkId: virtualNetwork.id
  }
}

// The app module reads this output, so it waits for this whole deployment: every endpoint and DNS record exists
// before the app starts.
output appSubnetId string = appSubnet.id

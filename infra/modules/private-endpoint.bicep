// One private endpoint (Key Vault, or one storage service) in the endpoints subnet, with the private DNS zone
// that makes the service's usual host name resolve to the endpoint's address inside the virtual network.
param location string
param tags object

@description('Name of the private endpoint.')
param name string

@description('Resource id of the vault or storage account.')
param targetResourceId string

@allowed(['vault', 'blob', 'queue', 'table'])
@description('Private link group (sub-resource) of the target.')
param groupId string

@description('privatelink zone for that group, e.g. privatelink.blob.core.windows.net.')
param dnsZoneName string

param subnetId string
param virtualNetworkId string

resource zone 'Microsoft.Network/privateDnsZones@2024-06-01' = {
  name: dnsZoneName
  location: 'global'
  tags: tags
}

resource zoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = {
  parent: zone
  name: 'link-${groupId}'
  location: 'global'
  tags: tags
  properties: {
    virtualNetwork: { id: virtualNetworkId }
    // The endpoint's record is written by the zone group below, not by VM auto-registration.
    registrationEnabled: false
  }
}

resource endpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: { id: subnetId }
    privateLinkServiceConnections: [
      {
        name: groupId
        properties: {
          privateLinkServiceId: targetResourceId
          groupIds: [groupId]
        }
      }
    ]
  }
}

resource zoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      { name: groupId, properties: { privateDnsZoneId: zone.id } }
    ]
  }
}

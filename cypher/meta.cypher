// name: ensure_secret
// params: key, value
MERGE (m:Meta {key: $key})
  ON CREATE SET m.value = $value
RETURN m.value AS value

// name: ping
RETURN 1 AS ok

// name: server_components
CALL dbms.components() YIELD name, versions, edition
RETURN name, versions, edition

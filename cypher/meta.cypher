// name: ensure_secret -> value
// params: key, value
MERGE (m:Meta {key: $key})
  ON CREATE SET m.value = $value
RETURN m.value AS value

// name: ping -> value
RETURN 1 AS ok

// name: server_components -> rows
CALL dbms.components() YIELD name, versions, edition
RETURN name, versions, edition

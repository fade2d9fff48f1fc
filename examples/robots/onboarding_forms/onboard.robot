*** Settings ***
Documentation     Fill in the back-office forms for a new employee.
...
...               Checks the employee's data first (a suite setup: nothing is filed
...               with bad data), then fills in the HR form (JSON) and the IT access
...               request (text), and captures an image of the form. Everything is
...               written to ${OUTPUT DIR}, which Interlock keeps and links from the node.
Library           Collections
Library           DateTime
Library           OperatingSystem
Library           String
Library           interlock_rpa.Outputs
Library           ${CURDIR}/form_image.py
Suite Setup       Validate Employee Data

*** Variables ***
${employee_name}    ${EMPTY}
${department}       ${EMPTY}
${start_date}       ${EMPTY}
@{equipment}        laptop
@{DEPARTMENTS}      Engineering    Finance    Operations    Sales
${FORMS}            ${OUTPUT DIR}/forms

*** Tasks ***
Fill in HR form
    &{form}=    Create Dictionary    employee_id=${EMPLOYEE_ID}    name=${employee_name}
    ...    department=${department}    start_date=${start_date}
    ${json}=    Evaluate    json.dumps($form, indent=2)
    Create File    ${FORMS}/hr_form.json    ${json}
    Set Interlock Output    employee_id    ${EMPLOYEE_ID}

Request IT access
    ${items}=    Catenate    SEPARATOR=,${SPACE}    @{equipment}
    Create File    ${FORMS}/it_request.txt
    ...    IT access request\nEmployee: ${employee_name} (${EMPLOYEE_ID})\nTeam: ${department}\nFrom: ${start_date}\nEquipment: ${items}\n
    Set Interlock Output    equipment_count    ${{ len($equipment) }}

Capture form screenshot
    &{fields}=    Create Dictionary    Employee=${employee_name}    Department=${department}
    ...    Start date=${start_date}    Equipment=${{ ", ".join($equipment) }}
    ${image}=    Render Form Image    ${OUTPUT DIR}/onboarding_form.png    New employee    ${fields}
    Log    <img src="onboarding_form.png" width="360">    html=True
    @{forms}=    List Files In Directory    ${FORMS}    absolute=True
    Set Interlock Outputs    forms=${forms}    screenshot=${image}

*** Keywords ***
Validate Employee Data
    Should Not Be Empty    ${employee_name.strip()}    Employee name is empty
    Should Contain    ${DEPARTMENTS}    ${department}
    ...    msg=Unknown department '${department}': expected one of ${{ ", ".join($DEPARTMENTS) }}
    ...    values=False
    Should Match Regexp    ${start_date}    ^\\d{4}-\\d{2}-\\d{2}$
    ...    msg=Invalid start date '${start_date}': expected YYYY-MM-DD    values=False
    TRY
        Convert Date    ${start_date}    date_format=%Y-%m-%d
    EXCEPT
        Fail    Invalid start date '${start_date}': there is no such day
    END
    ${initials}=    Evaluate    "".join(w[0] for w in $employee_name.split()).upper()
    Set Suite Variable    ${EMPLOYEE_ID}    EMP-${start_date.replace("-", "")}-${initials}
